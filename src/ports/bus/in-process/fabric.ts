/** One registration on the fabric: a subscription or a server, with the subject pattern it listens on. */
export interface Listener {
  readonly subject: string;
  readonly tokens: readonly string[];
}

/**
 * The subjects listened on, indexed so that literal subjects (one per device, the common case) are found by one map
 * lookup and only wildcard patterns are scanned.
 */
export class Registry<L extends Listener> {
  private readonly literal = new Map<string, Set<L>>();
  private readonly patterns = new Set<L>();

  add(listener: L): void {
    if (!isPattern(listener.tokens)) {
      const set = this.literal.get(listener.subject) ?? new Set<L>();
      set.add(listener);
      this.literal.set(listener.subject, set);
    } else {
      this.patterns.add(listener);
    }
  }

  remove(listener: L): void {
    const set = this.literal.get(listener.subject);
    if (set?.delete(listener) && set.size === 0) this.literal.delete(listener.subject);
    this.patterns.delete(listener);
  }

  /** Every listener whose pattern matches the literal `subject`, in registration order within each kind. */
  matching(subject: string, tokens: readonly string[]): L[] {
    const found = [...(this.literal.get(subject) ?? [])];
    for (const listener of this.patterns) if (matches(listener.tokens, tokens)) found.push(listener);
    return found;
  }
}

function isPattern(tokens: readonly string[]): boolean {
  return tokens.some((t) => t === '*' || t === '>');
}

/** NATS matching: `*` takes exactly one token, a final `>` one or more. */
export function matches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i += 1) {
    const p = pattern[i];
    if (p === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== '*' && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}
