
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'tiny-forge' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'tiny-forge'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'tiny-forge' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('deploy', 'deploy', [CompletionResultType]::ParameterValue, 'Deploy a tag of a project''s stage: pull, create, start, health-check, publish')
            [CompletionResult]::new('rollback', 'rollback', [CompletionResultType]::ParameterValue, 'Deploy a slot''s previous successful image again (by digest), health-gated like a deploy')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Take one instance down on purpose: proxy host, container, record (e.g. a merged branch)')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Repair and clean up: proxy hosts, orphans, interrupted deploys, TTLs, max_instances, unused images, old history')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Print an instance''s own output: stdout to stdout, stderr to stderr')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List instances, cross-checked with Docker')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Show past deploys, newest first; "history show <id>" for one deploy''s log')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check what a deploy needs: config, proxy login, state file, Docker, network, and each project''s image in its registry with its credentials')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the deploy server: HTTP API with live events, registry webhooks, poller')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'Manage API tokens for `tiny-forge serve` (in the state file, on the server''s host)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('manpage', 'manpage', [CompletionResultType]::ParameterValue, 'Print the man page (roff); committed as man/tiny-forge.1')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tiny-forge;deploy' {
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for the lock (e.g. 5m), then exit 4')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the plan and touch nothing: the digest the tag resolves to now, whether it already runs, the host name, what it replaces, what max_instances would evict')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Redeploy even when the slot already runs this digest with the same settings')
            [CompletionResult]::new('--no-verify', '--no-verify', [CompletionResultType]::ParameterName, 'Skip the verify step: retire the previous instance as soon as the new one serves')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Exit 4 at once if another run holds this stage''s lock')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;rollback' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Return to this deploy''s image (an id from `tiny-forge history`)')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for the lock (e.g. 5m), then exit 4')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Exit 4 at once if another run holds this stage''s lock')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;remove' {
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for the lock (e.g. 5m), then exit 4')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Exit 4 at once if another run holds this stage''s lock')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;prune' {
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Remove tag instances older than this (e.g. 7d) [default: each project''s ttl]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('--include-default', '--include-default', [CompletionResultType]::ParameterName, 'Let age-based removal reach the default tag''s slot too')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print exactly what would be done, and do nothing')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;logs' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only lines from the last DURATION (e.g. 10m)')
            [CompletionResult]::new('--tail', '--tail', [CompletionResultType]::ParameterName, 'Only the last N lines')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Keep printing new lines until the instance is replaced or removed')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep printing new lines until the instance is replaced or removed')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;list' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('--probe', '--probe', [CompletionResultType]::ParameterName, 'Probe each running instance''s health path now (HEALTH column)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;history' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many deploys')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One deploy with all its log entries')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tiny-forge;history;show' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep printing entries until the deploy ends; exit with its exit code')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;history;help' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One deploy with all its log entries')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tiny-forge;history;help;show' {
            break
        }
        'tiny-forge;history;help;help' {
            break
        }
        'tiny-forge;check' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address and port to listen on')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;token' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a token; it is printed once, and only its hash is kept')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List tokens (never the tokens themselves)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a token by name; requests with it fail from now on')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tiny-forge;token;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'A unique name, recorded as the actor of every deploy the token starts')
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Only these projects (repeatable) [default: any]')
            [CompletionResult]::new('--stage', '--stage', [CompletionResultType]::ParameterName, 'Only these stages (repeatable) [default: any]')
            [CompletionResult]::new('--can', '--can', [CompletionResultType]::ParameterName, 'What it may do (deploy, rollback and remove need read too)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;token;list' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;token;revoke' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;token;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a token; it is printed once, and only its hash is kept')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List tokens (never the tokens themselves)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a token by name; requests with it fail from now on')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tiny-forge;token;help;create' {
            break
        }
        'tiny-forge;token;help;list' {
            break
        }
        'tiny-forge;token;help;revoke' {
            break
        }
        'tiny-forge;token;help;help' {
            break
        }
        'tiny-forge;completions' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;manpage' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How progress and results are shown')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Show every log entry (spinners are replaced by plain lines)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tiny-forge;help' {
            [CompletionResult]::new('deploy', 'deploy', [CompletionResultType]::ParameterValue, 'Deploy a tag of a project''s stage: pull, create, start, health-check, publish')
            [CompletionResult]::new('rollback', 'rollback', [CompletionResultType]::ParameterValue, 'Deploy a slot''s previous successful image again (by digest), health-gated like a deploy')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Take one instance down on purpose: proxy host, container, record (e.g. a merged branch)')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Repair and clean up: proxy hosts, orphans, interrupted deploys, TTLs, max_instances, unused images, old history')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Print an instance''s own output: stdout to stdout, stderr to stderr')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List instances, cross-checked with Docker')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Show past deploys, newest first; "history show <id>" for one deploy''s log')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check what a deploy needs: config, proxy login, state file, Docker, network, and each project''s image in its registry with its credentials')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the deploy server: HTTP API with live events, registry webhooks, poller')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'Manage API tokens for `tiny-forge serve` (in the state file, on the server''s host)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('manpage', 'manpage', [CompletionResultType]::ParameterValue, 'Print the man page (roff); committed as man/tiny-forge.1')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tiny-forge;help;deploy' {
            break
        }
        'tiny-forge;help;rollback' {
            break
        }
        'tiny-forge;help;remove' {
            break
        }
        'tiny-forge;help;prune' {
            break
        }
        'tiny-forge;help;logs' {
            break
        }
        'tiny-forge;help;list' {
            break
        }
        'tiny-forge;help;history' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One deploy with all its log entries')
            break
        }
        'tiny-forge;help;history;show' {
            break
        }
        'tiny-forge;help;check' {
            break
        }
        'tiny-forge;help;serve' {
            break
        }
        'tiny-forge;help;token' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a token; it is printed once, and only its hash is kept')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List tokens (never the tokens themselves)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a token by name; requests with it fail from now on')
            break
        }
        'tiny-forge;help;token;create' {
            break
        }
        'tiny-forge;help;token;list' {
            break
        }
        'tiny-forge;help;token;revoke' {
            break
        }
        'tiny-forge;help;completions' {
            break
        }
        'tiny-forge;help;manpage' {
            break
        }
        'tiny-forge;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
