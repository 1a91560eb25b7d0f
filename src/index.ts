import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { NbmciSidebar } from './components/Sidebar';
import { NbmciModel } from './model';
import { ReportsDrive } from './reports';
import { INbmciModel } from './tokens';

export { INbmciModel, Nbmci } from './tokens';

/** The registry state, shared by every nbmci view. */
const modelPlugin: JupyterFrontEndPlugin<INbmciModel> = {
  id: 'nbmci:model',
  description: 'The nbmci registry, read over the server extension REST API.',
  autoStart: true,
  provides: INbmciModel,
  optional: [ITranslator],
  activate: (app: JupyterFrontEnd, translator: ITranslator | null): INbmciModel => {
    const trans = (translator ?? nullTranslator).load('nbmci');
    const contents = app.serviceManager.contents;
    contents.addDrive(new ReportsDrive(app.serviceManager.serverSettings));
    return new NbmciModel(
      path => app.commands.execute('docmanager:open', { path }),
      contents,
      trans
    );
  }
};

/** The left sidebar panel: models, versions, CI, publish and roll back. */
const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'nbmci:sidebar',
  description: 'A left sidebar panel for nbmci models.',
  autoStart: true,
  requires: [INbmciModel],
  optional: [ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    model: INbmciModel,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('nbmci');
    const sidebar = new NbmciSidebar(model, trans);
    app.shell.add(sidebar, 'left', { rank: 400 });
    restorer?.add(sidebar, sidebar.id);
    app.commands.addCommand('nbmci:refresh-models', {
      label: trans.__('Refresh nbmci models'),
      execute: () => model.refresh()
    });
    app.commands.addCommand('nbmci:open-sidebar', {
      label: trans.__('Show nbmci models'),
      execute: () => app.shell.activateById(sidebar.id)
    });
  }
};

export default [modelPlugin, sidebarPlugin];
