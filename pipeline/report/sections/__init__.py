"""The report's sections, one module per section or close family of sections.

Each section function takes the loaded ``Artifacts`` (and, for the data sections, the
exploration frame) and returns an already-escaped HTML fragment; ``pipeline.report.page``
runs each one under ``guard`` and places it in the page.
"""
