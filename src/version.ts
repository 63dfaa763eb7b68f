/** MqttWk's version, as `$SYS/broker/version`, the admin API and --version report it. */
export const MQTTWK_VERSION = "2.0.0";
