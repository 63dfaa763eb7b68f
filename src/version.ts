/** MqttWk's version, as `$SYS/broker/version` and the admin API report it. */
export const MQTTWK_VERSION = "1.0.0";
