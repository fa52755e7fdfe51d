"""Adapters from other training frameworks to :class:`latentlapse.Timelapse`."""
