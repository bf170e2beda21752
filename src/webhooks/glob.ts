// Globs for rule matching: `*` matches within one path segment, `**` across segments, `?` one character.
const cache = new Map<string, RegExp>();

export function globToRegExp(glob: string): RegExp {
  let regex = cache.get(glob);
  if (regex) return regex;
  let source = '';
  for (let i = 0; i < glob.length; i += 1) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      source += '.*';
      i += 1;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  regex = new RegExp(`^${source}$`);
  cache.set(glob, regex);
  return regex;
}

/** A rule field matches when it is empty, or its glob matches the value. */
export function matches(pattern: string | null, value: string | null): boolean {
  if (!pattern) return true;
  return value !== null && globToRegExp(pattern).test(value);
}
