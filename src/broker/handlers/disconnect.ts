/** DISCONNECT: the will is discarded (MQTT-3.14.4-3) and the connection closed. */
import type { Client } from "../client.ts";

export function handleDisconnect(client: Client): void {
  client.disconnectGracefully();
}
