// Hashtags, parsed by one rule for the live code (a post's tag rows) and the simulator (the tag
// writes it charges an upload with).

/** Hashtags as Instagram parsed them: `#` then letters, digits or underscores; lowercased, unique (at most 30). */
export function parseTags(caption: string | null): string[] {
  if (!caption) return [];
  const out = new Set<string>();
  for (const m of caption.matchAll(/#([\p{L}\p{N}_]{1,100})/gu)) {
    out.add(m[1]!.toLowerCase());
    if (out.size >= 30) break;
  }
  return [...out];
}
