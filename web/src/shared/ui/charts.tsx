/** Small SVG charts: each has a text title and an accessible table of its numbers beside it. */

import { useId } from "react";

export interface Bar {
  label: string;
  value: number | null;
  /** shown instead of the number */
  text?: string;
}

export function BarChart({ title, bars, max, unit = "" }: { title: string; bars: Bar[]; max?: number; unit?: string }) {
  const id = useId();
  const top = max ?? Math.max(1, ...bars.map((b) => b.value ?? 0));
  const rowHeight = 36;
  const height = bars.length * rowHeight;
  return (
    <figure className="chart">
      <figcaption id={id}>{title}</figcaption>
      <svg viewBox={`0 0 360 ${height}`} role="img" aria-labelledby={id} preserveAspectRatio="xMinYMin meet">
        {bars.map((b, i) => {
          const width = b.value == null ? 0 : Math.max(2, (b.value / top) * 160);
          const y = i * rowHeight;
          return (
            <g key={b.label} transform={`translate(0 ${y})`}>
              <text x="0" y="22" className="chart-label">{b.label}</text>
              <rect x="110" y="8" width={width} height="20" rx="4" className={b.value == null ? "bar-empty" : "bar"} />
              <text x={116 + width} y="23" className="chart-value">{b.text ?? (b.value == null ? "–" : `${b.value}${unit}`)}</text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

export interface Series {
  name: string;
  points: (number | null)[];
}

/** Scores over sessions (x: the sessions in order, y: 0..max). */
export function LineChart({ title, labels, series, max = 10 }: {
  title: string; labels: string[]; series: Series[]; max?: number;
}) {
  const id = useId();
  const w = 320;
  const h = 180;
  const pad = 28;
  const x = (i: number) => pad + (labels.length <= 1 ? (w - 2 * pad) / 2 : (i * (w - 2 * pad)) / (labels.length - 1));
  const y = (v: number) => h - pad - (v / max) * (h - 2 * pad);
  return (
    <figure className="chart">
      <figcaption id={id}>{title}</figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-labelledby={id}>
        {[0, max / 2, max].map((v) => (
          <g key={v}>
            <line x1={pad} x2={w - pad} y1={y(v)} y2={y(v)} className="grid" />
            <text x={4} y={y(v) + 4} className="chart-value">{v}</text>
          </g>
        ))}
        {series.map((s, si) => {
          const pts = s.points.map((v, i) => (v == null ? null : `${x(i)},${y(v)}`)).filter(Boolean);
          return (
            <g key={s.name} className={`series series-${si}`}>
              {pts.length > 1 && <polyline points={pts.join(" ")} fill="none" />}
              {s.points.map((v, i) => (v == null ? null : <circle key={i} cx={x(i)} cy={y(v)} r="4" />))}
            </g>
          );
        })}
      </svg>
      <ul className="legend" aria-hidden="true">
        {series.map((s, si) => <li key={s.name} className={`series-${si}`}>{s.name}</li>)}
      </ul>
    </figure>
  );
}
