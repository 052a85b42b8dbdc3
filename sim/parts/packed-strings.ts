// A column of strings kept as a few long strings: the roster of a million seeded accounts holds
// three million ids, usernames and tokens, and as separate strings they cost every full garbage
// collection ~270 ms of marking (measured, Node 20) — a pause no request could hide. Packed, a
// column is one string and one offset table per 4,096 entries; reading one makes a substring.

/** Entries per packed chunk (count). */
const CHUNK = 4096;

export class PackedStrings {
  private readonly packed: Array<{ text: string; ends: Uint32Array }> = [];
  private open: string[] = [];

  get length(): number {
    return this.packed.length * CHUNK + this.open.length;
  }

  push(value: string): void {
    this.open.push(value);
    if (this.open.length === CHUNK) {
      const ends = new Uint32Array(CHUNK);
      let at = 0;
      for (let i = 0; i < CHUNK; i++) ends[i] = at += this.open[i]!.length;
      this.packed.push({ text: this.open.join(''), ends });
      this.open = [];
    }
  }

  get(i: number): string {
    const c = Math.floor(i / CHUNK);
    if (c < this.packed.length) {
      const { text, ends } = this.packed[c]!;
      const k = i - c * CHUNK;
      return text.slice(k === 0 ? 0 : ends[k - 1]!, ends[k]!);
    }
    const s = this.open[i - this.packed.length * CHUNK];
    if (s === undefined) throw new RangeError(`no entry ${i} (have ${this.length})`);
    return s;
  }
}
