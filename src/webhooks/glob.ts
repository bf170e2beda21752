// Globs for rule matching: `*` matches within one path segment, `**` across segments, `?` one character.
//
// Matched by walking the pattern's positions as a set, one character of the value at a time: time grows with
// the value's length times the pattern's, never more. (A regular expression would backtrack: `*a*a*a*a*a*a*a*b`
// against forty `a`s took seconds, on the event loop that serves every request, and the value comes from the
// sender's payload.)

type Token = { kind: 'char'; char: string } | { kind: 'one' } | { kind: 'segment' } | { kind: 'any' };

function tokenize(glob: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < glob.length; i += 1) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      tokens.push({ kind: 'any' });
      i += 1;
    } else if (c === '*') tokens.push({ kind: 'segment' });
    else if (c === '?') tokens.push({ kind: 'one' });
    else tokens.push({ kind: 'char', char: c });
  }
  return tokens;
}

const cache = new Map<string, (value: string) => boolean>();

function globMatcher(glob: string): (value: string) => boolean {
  let matcher = cache.get(glob);
  if (matcher) return matcher;
  const tokens = tokenize(glob);
  const end = tokens.length;
  /** Adds `position`, and every position after it that stars there let it reach without a character. */
  const add = (states: Uint8Array, position: number) => {
    for (let p = position; p <= end && !states[p]; p += 1) {
      states[p] = 1;
      const kind = tokens[p]?.kind;
      if (kind !== 'segment' && kind !== 'any') break;
    }
  };
  matcher = (value: string) => {
    // Two sets of positions, the one read and the one written, swapped after each character.
    let states = new Uint8Array(end + 1);
    let next = new Uint8Array(end + 1);
    add(states, 0);
    // By UTF-16 unit, as the pattern is read (and as a regular expression without the u flag would).
    for (let i = 0; i < value.length; i += 1) {
      const c = value[i]!;
      next.fill(0);
      let alive = false;
      for (let p = 0; p < end; p += 1) {
        if (!states[p]) continue;
        const token = tokens[p]!;
        if (token.kind === 'any' || (token.kind === 'segment' && c !== '/')) {
          add(next, p);
          alive = true;
        } else if ((token.kind === 'one' && c !== '/') || (token.kind === 'char' && token.char === c)) {
          add(next, p + 1);
          alive = true;
        }
      }
      if (!alive) return false;
      [states, next] = [next, states];
    }
    return states[end] === 1;
  };
  cache.set(glob, matcher);
  return matcher;
}

/** A rule field matches when it is empty, or its glob matches the value. */
export function matches(pattern: string | null, value: string | null): boolean {
  if (!pattern) return true;
  return value !== null && globMatcher(pattern)(value);
}

/** As `matches`, ignoring case: for repository names, which GitHub and GitLab treat without regard to case. */
export function matchesIgnoringCase(pattern: string | null, value: string | null): boolean {
  return matches(pattern?.toLowerCase() ?? null, value?.toLowerCase() ?? null);
}
