/**
 * What an MQTT client with clean session 0 keeps between connections: its subscriptions, by clientId. Shared by
 * every node, so a reconnect that lands on another node (a token renewal behind a load balancer) finds them.
 */
export interface MqttSessionStore {
  /** The kept subscriptions (opaque names core chose), or undefined when no session is kept for the client. */
  get(clientId: string): Promise<readonly string[] | undefined>;
  /** Keeps (replaces) the client's subscriptions. */
  put(clientId: string, subscriptions: readonly string[], nowMs: number): Promise<void>;
  /** Forgets the client's session (a clean-session connect). */
  delete(clientId: string): Promise<void>;
}
