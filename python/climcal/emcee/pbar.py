"""The progress bar of ``sample(progress=...)`` (tqdm, when installed)."""

import logging

__all__ = ["get_progress_bar"]

logger = logging.getLogger(__name__)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def update(self, n=1):
        pass


def get_progress_bar(display, total, **kwargs):
    """A tqdm bar (``display="notebook"``: tqdm's notebook bar), or one that does nothing."""
    if not display:
        return _NoBar()
    try:
        import tqdm
    except ImportError:
        logger.warning("You must install the tqdm library to use progress indicators with emcee")
        return _NoBar()
    if display is True:
        return tqdm.tqdm(total=total, **kwargs)
    return getattr(tqdm, "tqdm_" + display)(total=total, **kwargs)
