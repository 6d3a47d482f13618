/**
 * `node --import tsx bench/replot.ts COMPARE_JSON OUT_SVG [TITLE]`: draws the scaling plot again
 * from a bench:compare result file (bench/results/compare.json), without measuring anything.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { scalingPlot, type PlotPoint } from './lib/plot.ts';

const [input, output, title] = process.argv.slice(2);
if (!input || !output) {
  process.stderr.write('usage: node --import tsx bench/replot.ts COMPARE_JSON OUT_SVG [TITLE]\n');
  process.exit(2);
}
const json = JSON.parse(readFileSync(input, 'utf8')) as { options: { services: number; service?: string }; scale?: { points: Record<string, PlotPoint[]> } };
if (!json.scale) {
  process.stderr.write(`${input} has no scaling figures\n`);
  process.exit(1);
}
writeFileSync(output, scalingPlot(json.scale.points, title ?? `first deployment, ${json.options.services} ${json.options.service ?? 'node'} services per host`));
