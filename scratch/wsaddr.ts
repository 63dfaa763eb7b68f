import mqtt from "mqtt";
const tcp = Number(Deno.args[0]), ws = Number(Deno.args[1]);
async function c(url: string, id: string) {
  const cl = mqtt.connect(url, { clientId: id, clean: false, reconnectPeriod: 0 });
  const r = await new Promise<string>((res) => {
    cl.on("connect", (p) => res("ok " + p.returnCode));
    cl.on("error", (e) => res("err " + e.message));
    cl.on("close", () => res("closed"));
  });
  console.log(id, url, r);
}
await c(`mqtt://127.0.0.1:${tcp}`, "t1");
await c(`mqtt://127.0.0.1:${tcp}`, "t2");
await c(`ws://127.0.0.1:${ws}/mqtt`, "w1");
await c(`ws://localhost:${ws}/mqtt`, "w2");
Deno.exit(0);
