#!/usr/bin/env bash
# Fetches the Apache Kafka broker (org.apache.kafka:kafka_2.13 and everything it needs at run
# time) from Maven Central into $HOME/.cache/mqttwk/kafka-<version>/libs, outside the work tree,
# so tests and `deno task kafka` can run a real broker without a Kafka download site.
#
#   scripts/kafka/fetch.sh [VERSION]     # default: $MQTTWK_KAFKA_VERSION or 4.1.1
#
# Idempotent: a complete cache (marked by libs/.complete) is reused. Prints the libs directory.
set -euo pipefail

version="${1:-${MQTTWK_KAFKA_VERSION:-4.1.1}}"
cache="${MQTTWK_KAFKA_CACHE:-$HOME/.cache/mqttwk}"
dest="$cache/kafka-$version"

if [[ -f "$dest/libs/.complete" ]]; then
  echo "$dest/libs"
  exit 0
fi

mkdir -p "$cache"
# Test files run in parallel and each asks for the jars: one fetches, the others wait for it.
exec 9>"$cache/kafka-$version.lock"
flock 9
if [[ -f "$dest/libs/.complete" ]]; then
  echo "$dest/libs"
  exit 0
fi

command -v mvn >/dev/null || { echo "fetch.sh: mvn (Maven) is not installed" >&2; exit 1; }
command -v java >/dev/null || { echo "fetch.sh: java is not installed" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The Scala module pulls in the server, raft, metadata, storage and tools modules; log4j's
# implementation is only an optional/test dependency of Kafka, so it is named here to get
# readable broker logs instead of SLF4J's no-op warning.
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>mqttwk</groupId>
  <artifactId>kafka-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
POM

mkdir -p "$dest"
rm -rf "$dest/libs.tmp"
echo "fetch.sh: fetching Kafka $version from Maven Central into $dest/libs" >&2
mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$dest/libs.tmp" >&2
rm -rf "$dest/libs"
mv "$dest/libs.tmp" "$dest/libs"
touch "$dest/libs/.complete"
echo "$dest/libs"
