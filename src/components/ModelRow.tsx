import { TranslationBundle } from '@jupyterlab/translation';
import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { INbmciModel, Nbmci } from '../tokens';
import { AliasChips } from './chips';
import { VersionRow } from './VersionRow';

export interface IModelRowProps {
  model: INbmciModel;
  summary: Nbmci.IModelSummary;
  trans: TranslationBundle;
}

/** One model: a header that expands to its versions. */
export function ModelRow(props: IModelRowProps): JSX.Element {
  const { model, summary, trans } = props;
  const name = summary.name;
  const expanded = model.isExpanded(name);
  const busy = model.busy(name);
  const detail = model.detail(name);
  const rollback = rollbackState(detail, trans);
  const Caret = expanded ? caretDownIcon : caretRightIcon;
  return (
    <li className="jp-nbmci-Model nbmci-model" data-name={name}>
      <div
        className="jp-nbmci-ModelHead"
        role="button"
        tabIndex={0}
        aria-expanded={expanded}
        onClick={() => model.toggle(name)}
        onKeyDown={event => {
          if (event.key === 'Enter' || event.key === ' ') {
            event.preventDefault();
            model.toggle(name);
          }
        }}
      >
        <Caret.react tag="span" className="jp-nbmci-Caret" />
        <span className="jp-nbmci-ModelName" title={name}>
          {name}
        </span>
        <span className="jp-nbmci-Latest">
          {summary.latest === null ? '—' : `v${summary.latest}`}
        </span>
        {Object.entries(summary.aliases)
          .sort(([a], [b]) => Number(b === 'production') - Number(a === 'production'))
          .map(([alias, version]) => (
            <AliasChips key={alias} aliases={[alias]} version={version} />
          ))}
      </div>
      {busy && (
        <div className="jp-nbmci-Progress" role="status">
          <span className="jp-nbmci-Spinner" />
          {busy}
        </div>
      )}
      {expanded && (
        <div className="jp-nbmci-ModelBody">
          <div className="jp-nbmci-ModelActions">
            <span className="jp-nbmci-Count">
              {trans._n('%1 version', '%1 versions', summary.versions)}
            </span>
            <button
              className="jp-nbmci-Button nbmci-rollback"
              disabled={!!busy || !rollback.enabled}
              title={rollback.title}
              onClick={() => void model.rollback(name)}
            >
              {trans.__('Roll back')}
            </button>
          </div>
          {detail ? (
            <ul className="jp-nbmci-Versions">
              {detail.versions.map(version => (
                <VersionRow
                  key={version.version}
                  model={model}
                  name={name}
                  version={version}
                  busy={!!busy}
                  trans={trans}
                />
              ))}
            </ul>
          ) : (
            <div className="jp-nbmci-Empty">{trans.__('Loading…')}</div>
          )}
        </div>
      )}
    </li>
  );
}

/** Roll back is offered only where `nbmci rollback NAME` would go: the server says where. */
function rollbackState(
  detail: Nbmci.IModel | undefined,
  trans: TranslationBundle
): { enabled: boolean; title: string } {
  if (detail === undefined) {
    return { enabled: false, title: trans.__('Loading…') };
  }
  const target = detail.rollback;
  if (target) {
    return {
      enabled: true,
      title: trans.__('Move production back from v%1 to v%2', target.from, target.to)
    };
  }
  if (target === undefined) {
    return { enabled: false, title: trans.__('This server does not say where a rollback would go') };
  }
  return {
    enabled: false,
    title:
      detail.aliases.production === undefined
        ? trans.__('Nothing to roll back: no version is in production')
        : trans.__(
            'Nothing to roll back to: production (v%1) has no earlier version',
            detail.aliases.production
          )
  };
}
