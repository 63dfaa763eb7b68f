/** The version MqttWk reports (HTTP API status, --version). */
export const VERSION = "2.0.0";
