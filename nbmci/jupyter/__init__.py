"""nbmci in Jupyter: the ``%mci_*`` magics and the ipywidgets views they show.

``%load_ext nbmci`` calls ``nbmci.load_ipython_extension``, which imports this package;
``import nbmci`` alone never does.

Modules: ``magics`` (the magics), ``output`` (each result shown once, as its view),
``widgets`` (the views), ``render`` (what each view shows, as tables), ``markup`` (tables as
HTML and text), ``status`` (what ``%mci_status`` reports), ``running`` (``%mci_ci``'s run on
a thread of its own, its progress shown from the cell's), ``completion`` (Tab for model names
and refs).
"""
