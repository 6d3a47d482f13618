/**
 * The scaling plot of `npm run bench:compare`: first-deployment time against hosts, one line
 * per tool (median, with a bar from min to max), on a logarithmic time axis so that tools an
 * order of magnitude apart both stay readable. Plain SVG, no dependencies.
 */
export interface PlotPoint {
  n: number;
  median: number;
  min: number;
  max: number;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

/** `points`: per tool, its points in ms. Tools without points are left out. */
export function scalingPlot(points: Record<string, PlotPoint[]>, title: string): string {
  const W = 600, H = 360, L = 64, R = 110, T = 34, B = 45;
  const tools = Object.keys(points).filter((t) => points[t]!.length > 0 && points[t]!.every((p) => Number.isFinite(p.median)));
  const all = tools.flatMap((t) => points[t]!);
  const ns = [...new Set(all.map((p) => p.n))].sort((a, b) => a - b);
  const maxN = Math.max(...ns);
  const lo = Math.log10(Math.min(...all.map((p) => p.min)) / 1000);
  const hi = Math.log10(Math.max(...all.map((p) => p.max)) / 1000);
  const yMin = Math.floor(lo);
  const yMax = Math.ceil(hi) === hi ? hi + 0.2 : Math.ceil(hi);
  const x = (n: number) => L + (n / maxN) * (W - L - R);
  const y = (seconds: number) => H - B - ((Math.log10(seconds) - yMin) / (yMax - yMin)) * (H - T - B);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(`<text x="${L}" y="18" font-size="13">${escape(title)}</text>`);
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`);
  for (let e = yMin; e <= Math.floor(yMax); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) > yMax) continue;
      const label = v >= 1 ? `${v}` : v.toFixed(-e);
      parts.push(`<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${label}</text><line x1="${L}" y1="${y(v)}" x2="${W - R}" y2="${y(v)}" stroke="#ddd"/>`);
    }
  }
  for (const n of ns) parts.push(`<text x="${x(n)}" y="${H - B + 16}" text-anchor="middle">${n}</text>`);
  const mid = (T + H - B) / 2;
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">hosts</text><text x="16" y="${mid}" transform="rotate(-90 16 ${mid})" text-anchor="middle">seconds (log scale; median, min–max)</text>`);
  tools.forEach((t, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const ps = points[t]!;
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${ps.map((p) => `${x(p.n)},${y(p.median / 1000)}`).join(' ')}"/>`);
    for (const p of ps) {
      parts.push(`<line x1="${x(p.n)}" x2="${x(p.n)}" y1="${y(p.min / 1000)}" y2="${y(p.max / 1000)}" stroke="${colour}"/><circle cx="${x(p.n)}" cy="${y(p.median / 1000)}" r="3" fill="${colour}"/>`);
    }
    parts.push(`<rect x="${W - R + 12}" y="${T + 10 + i * 20}" width="12" height="3" fill="${colour}"/><text x="${W - R + 30}" y="${T + 15 + i * 20}">${escape(t)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}
