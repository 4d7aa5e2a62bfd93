"""The Claude Code plugin's Python side: hook handlers, the learner brief, set-up.

The plugin's files (manifest, hooks.json, slash commands) live in the repository's
`plugin/` folder; this package holds what its hooks run. Keep imports here light: the
hooks start a fresh interpreter on every Claude Code turn.
"""
