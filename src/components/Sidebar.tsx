import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget, ToolbarButtonComponent, UseSignal, refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { nbmciIcon } from '../icon';
import { INbmciModel } from '../tokens';
import { ModelRow } from './ModelRow';

/** The panel's content: a header, then one row per model. */
export function ModelList(props: { model: INbmciModel; trans: TranslationBundle }): JSX.Element {
  const { model, trans } = props;
  let body: JSX.Element;
  if (model.offline && !model.loaded) {
    body = <div className="jp-nbmci-Empty jp-nbmci-Offline">{model.offline}</div>;
  } else if (!model.loaded) {
    body = <div className="jp-nbmci-Empty">{trans.__('Loading models…')}</div>;
  } else if (!model.models.length) {
    body = (
      <div className="jp-nbmci-Empty">
        {trans.__('No models yet. Commit one from a notebook with `%mci_commit clf`.')}
      </div>
    );
  } else {
    body = (
      <ul className="jp-nbmci-Models">
        {model.models.map(summary => (
          <ModelRow key={summary.name} model={model} summary={summary} trans={trans} />
        ))}
      </ul>
    );
  }
  return (
    <>
      <header className="jp-nbmci-Header">
        <nbmciIcon.react tag="span" className="jp-nbmci-HeaderIcon" />
        <h2 className="jp-nbmci-Title">{trans.__('Models')}</h2>
        <span className="nbmci-refresh">
          <ToolbarButtonComponent
            icon={refreshIcon}
            tooltip={trans.__('Refresh models')}
            onClick={() => void model.refresh()}
          />
        </span>
      </header>
      {model.offline && model.loaded && (
        <div className="jp-nbmci-Offline">{model.offline}</div>
      )}
      <div className="jp-nbmci-Body">{body}</div>
    </>
  );
}

/**
 * The left sidebar panel; it polls the registry only while it is visible.
 */
export class NbmciSidebar extends ReactWidget {
  constructor(
    private readonly _model: INbmciModel,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.id = 'nbmci-sidebar';
    this.addClass('jp-nbmci-Sidebar');
    this.title.icon = nbmciIcon;
    this.title.caption = _trans.__('nbmci models');
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._model.setActive(this.isVisible);
  }

  protected onBeforeDetach(msg: Message): void {
    this._model.setActive(false);
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.setActive(true);
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._model.setActive(false);
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => <ModelList model={this._model} trans={this._trans} />}
      </UseSignal>
    );
  }
}
