import React from 'react';

import { Nbmci } from '../tokens';

/** Alias chips; `production` is highlighted. Text only: names come from users. */
export function AliasChips(props: { aliases: string[]; version?: number }): JSX.Element | null {
  if (!props.aliases.length) {
    return null;
  }
  return (
    <span className="jp-nbmci-Aliases">
      {[...props.aliases].sort(byProductionFirst).map(alias => (
        <span
          key={alias}
          className={`jp-nbmci-Alias nbmci-alias${alias === 'production' ? ' jp-mod-production' : ''}`}
          data-alias={alias}
          title={props.version === undefined ? alias : `${alias} → v${props.version}`}
        >
          {props.version === undefined ? alias : `${alias} v${props.version}`}
        </span>
      ))}
    </span>
  );
}

/** The CI badge of one version: passed, failed, error, or none yet. */
export function CiBadge(props: {
  ci: Nbmci.ICiRun | null;
  trans: { __: (s: string, ...a: any[]) => string };
}): JSX.Element {
  const status = props.ci?.status ?? 'none';
  const label = props.ci ? props.ci.status : props.trans.__('no CI');
  const title = props.ci
    ? props.trans.__('CI %1 in %2 s', props.ci.status, props.ci.duration?.toFixed(1) ?? '?')
    : props.trans.__('CI has not run on this version');
  return (
    <span className="jp-nbmci-CiBadge nbmci-ci" data-status={status} title={title}>
      {label}
    </span>
  );
}

/** Up to three numeric metrics, the CI run's first. */
export function KeyMetrics(props: { version: Nbmci.IVersion }): JSX.Element | null {
  const merged = { ...props.version.metrics, ...(props.version.ci?.metrics ?? {}) };
  const shown = Object.entries(merged)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
    .slice(0, 3);
  if (!shown.length) {
    return null;
  }
  return (
    <span className="jp-nbmci-Metrics">
      {shown.map(([name, value]) => (
        <span key={name} className="jp-nbmci-Metric" title={`${name} = ${value}`}>
          <span className="jp-nbmci-MetricName">{name}</span>
          <span className="jp-nbmci-MetricValue">{formatNumber(value)}</span>
        </span>
      ))}
    </span>
  );
}

export function formatNumber(value: number): string {
  if (Number.isInteger(value) || !Number.isFinite(value)) {
    return String(value);
  }
  return String(Number(value.toPrecision(3)));
}

function byProductionFirst(a: string, b: string): number {
  return Number(b === 'production') - Number(a === 'production') || a.localeCompare(b);
}
