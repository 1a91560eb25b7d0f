import { Time } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
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

/**
 * Whether a version can be served: `servable`, `not servable` (the reason and the hint in the
 * tooltip), `checking…`, or a dim `?` when it was never checked. `data-status` is the status
 * with a dash for the space.
 */
export function ServabilityChip(props: {
  servability: Nbmci.IServability | undefined;
  versionRef: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { trans } = props;
  const s = props.servability ?? { status: 'unknown', reason: null, hint: null };
  let label: string;
  let lines: (string | null | undefined)[];
  switch (s.status) {
    case 'servable':
      label = trans.__('servable');
      lines = [
        trans.__('Servable: it loads from the store alone and reproduces its recorded outputs.'),
        checkedWhen(props.servability, trans)
      ];
      break;
    case 'not servable':
      label = trans.__('not servable');
      lines = [
        trans.__('Not servable: %1', s.reason ?? trans.__('no reason recorded')),
        s.hint,
        checkedWhen(props.servability, trans)
      ];
      break;
    case 'checking':
      label = trans.__('checking…');
      lines = [trans.__('Checking that it loads and predicts in a fresh process…')];
      break;
    default:
      label = '?';
      lines = [
        s.reason
          ? trans.__('Servability unknown: %1', s.reason)
          : trans.__('Servability unknown: not checked yet.'),
        s.hint ?? trans.__('Check it with `nbmci check %1`.', props.versionRef)
      ];
  }
  return (
    <span
      className="jp-nbmci-ServabilityChip nbmci-servability"
      data-status={s.status.replace(' ', '-')}
      title={lines.filter(Boolean).join('\n')}
    >
      {label}
    </span>
  );
}

function checkedWhen(s: Nbmci.IServability | undefined, trans: TranslationBundle): string | null {
  if (!s?.checked_at) {
    return null;
  }
  const where: { [where: string]: string } = {
    commit: trans.__('after commit'),
    ci: trans.__('by CI'),
    publish: trans.__('at publish'),
    check: trans.__('by `nbmci check`')
  };
  const seconds = s.seconds === null ? '' : trans.__(' (%1 s)', s.seconds.toFixed(1));
  return trans.__(
    'Checked %1 %2%3.',
    (s.where && where[s.where]) ?? s.where ?? '',
    Time.formatHuman(s.checked_at),
    seconds
  ).replace('  ', ' ');
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
