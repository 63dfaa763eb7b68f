/** PINGREQ: answered with PINGRESP (MQTT-3.12.4-1); any packet already reset the keepalive. */
import type { Client } from "../client.ts";

const PINGRESP = new Uint8Array([0xd0, 0x00]);

export function handlePingreq(client: Client): void {
  client.send(PINGRESP);
}
