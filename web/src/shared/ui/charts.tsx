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

/** Where each of `times` (ms) sits across [0, 1]: by time, so a gap of weeks looks like one, or evenly
 * when every point is at the same moment. */
export function timeScale(times: readonly number[]): number[] {
  if (times.length === 0) return [];
  const first = Math.min(...times);
  const span = Math.max(...times) - first;
  if (span <= 0) return times.map((_, i) => (times.length === 1 ? 0.5 : i / (times.length - 1)));
  return times.map((t) => (t - first) / span);
}

/** Scores over time (x: when each session was, y: 0..max), with the dates under the axis. */
export function LineChart({ title, times, tickLabel, series, max = 10 }: {
  title: string; times: number[]; tickLabel: (time: number) => string; series: Series[]; max?: number;
}) {
  const id = useId();
  const w = 360;
  const h = 200;
  const left = 28;
  const right = 16;
  const top = 12;
  const bottom = 36;
  const at = timeScale(times);
  const x = (i: number) => left + at[i]! * (w - left - right);
  const y = (v: number) => h - bottom - (v / max) * (h - top - bottom);
  // Dates under the axis: the first and the last, and the middle one when there is room.
  const ticks = times.length <= 1 ? [0] : times.length === 2 ? [0, 1] : [0, Math.floor((times.length - 1) / 2), times.length - 1];
  const distinctTicks = ticks.filter((i, k) => k === 0 || Math.abs(x(i) - x(ticks[k - 1]!)) > 70);
  return (
    <figure className="chart">
      <figcaption id={id}>{title}</figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-labelledby={id}>
        {[0, max / 2, max].map((v) => (
          <g key={v}>
            <line x1={left} x2={w - right} y1={y(v)} y2={y(v)} className="grid" />
            <text x={4} y={y(v) + 4} className="chart-value">{v}</text>
          </g>
        ))}
        {distinctTicks.map((i) => (
          <text key={i} x={x(i)} y={h - 12} className="chart-value"
            textAnchor={times.length > 1 && i === 0 ? "start" : times.length > 1 && i === times.length - 1 ? "end" : "middle"}>
            {tickLabel(times[i]!)}
          </text>
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
