"""The documentation site's own tools: executable examples, the API reference page, the MkDocs hook.

    python -m docsite.examples docs/api/tutor.md --url http://127.0.0.1:3000   # run one page's examples
"""
