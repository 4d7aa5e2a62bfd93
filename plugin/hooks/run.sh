#!/bin/sh
# Claude Code runs this for the plugin's hooks: `run.sh session-start` or `run.sh stop`, with
# the hook's JSON on stdin. It finds llmlab-hook with or without the llmlab venv on PATH:
#   1. beside the `llmlab` executable that the workspace's .mcp.json names (an absolute
#      path, written by `llmlab init` / `llmlab tutor setup --client claude-code`);
#   2. on PATH.
# Outside an llmlab workspace it prints nothing. Inside one, when llmlab-hook cannot be
# found, it says so in one line instead of doing nothing. It always exits 0 (a non-zero
# exit would show a hook error in Claude Code).
event="$1"
dir="${CLAUDE_PROJECT_DIR:-$PWD}"
while [ "$dir" != "/" ] && [ ! -f "$dir/llmlab.toml" ]; do dir=$(dirname "$dir"); done
[ -f "$dir/llmlab.toml" ] || exit 0
if [ -f "$dir/.mcp.json" ]; then
  exe=$(sed -n 's/.*"command": *"\([^"]*\/llmlab\)".*/\1/p' "$dir/.mcp.json" | head -n 1)
  if [ -n "$exe" ] && [ -x "${exe}-hook" ]; then exec "${exe}-hook" "$event"; fi
fi
if command -v llmlab-hook >/dev/null 2>&1; then exec llmlab-hook "$event"; fi
cat >/dev/null
printf '%s\n' "{\"systemMessage\": \"llmlab: the plugin's hooks found no llmlab-hook. Run 'llmlab tutor setup --client claude-code' in $dir with the llmlab venv active (it writes the absolute path into .mcp.json), or start Claude Code with the venv active.\"}"
exit 0
