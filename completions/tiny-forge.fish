# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tiny_forge_global_optspecs
    string join \n config= state= output= q/quiet v/verbose remote= h/help V/version
end

function __fish_tiny_forge_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tiny_forge_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tiny_forge_using_subcommand
    set -l cmd (__fish_tiny_forge_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -s V -l version -d 'Print version'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "deploy" -d 'Deploy a tag of a project\'s stage: pull, create, start, health-check, publish'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "rollback" -d 'Deploy a slot\'s previous successful image again (by digest), health-gated like a deploy'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "remove" -d 'Take one instance down on purpose: proxy host, container, record (e.g. a merged branch)'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "prune" -d 'Repair and clean up: proxy hosts, orphans, interrupted deploys, TTLs, max_instances, unused images, old history'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "logs" -d 'Print an instance\'s own output: stdout to stdout, stderr to stderr'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "list" -d 'List instances, cross-checked with Docker'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "history" -d 'Show past deploys, newest first; "history show <id>" for one deploy\'s log'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "check" -d 'Check what a deploy needs: config, proxy login, state file, Docker, network, and each project\'s image in its registry with its credentials'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "serve" -d 'Run the deploy server: HTTP API with live events, registry webhooks, poller'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "token" -d 'Manage API tokens for `tiny-forge serve` (in the state file, on the server\'s host)'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "manpage" -d 'Print the man page (roff); committed as man/tiny-forge.1'
complete -c tiny-forge -n "__fish_tiny_forge_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -l wait -d 'Wait at most this long for the lock (e.g. 5m), then exit 4' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -l dry-run -d 'Show the plan and touch nothing: the digest the tag resolves to now, whether it already runs, the host name, what it replaces, what max_instances would evict'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -l force -d 'Redeploy even when the slot already runs this digest with the same settings'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -l no-verify -d 'Skip the verify step: retire the previous instance as soon as the new one serves'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -l no-wait -d 'Exit 4 at once if another run holds this stage\'s lock'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand deploy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -l to -d 'Return to this deploy\'s image (an id from `tiny-forge history`)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -l wait -d 'Wait at most this long for the lock (e.g. 5m), then exit 4' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -l no-wait -d 'Exit 4 at once if another run holds this stage\'s lock'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand rollback" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand remove" -l wait -d 'Wait at most this long for the lock (e.g. 5m), then exit 4' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand remove" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand remove" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand remove" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand remove" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand remove" -l no-wait -d 'Exit 4 at once if another run holds this stage\'s lock'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand remove" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand remove" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -l older-than -d 'Remove tag instances older than this (e.g. 7d) [default: each project\'s ttl]' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -l include-default -d 'Let age-based removal reach the default tag\'s slot too'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -l dry-run -d 'Print exactly what would be done, and do nothing'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -l since -d 'Only lines from the last DURATION (e.g. 10m)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -l tail -d 'Only the last N lines' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -s f -l follow -d 'Keep printing new lines until the instance is replaced or removed'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand list" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand list" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand list" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand list" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand list" -l probe -d 'Probe each running instance\'s health path now (HEALTH column)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand list" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand list" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -l limit -d 'How many deploys' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -a "show" -d 'One deploy with all its log entries'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and not __fish_seen_subcommand_from show help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from show" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from show" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from show" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from show" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from show" -l follow -d 'Keep printing entries until the deploy ends; exit with its exit code'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from help" -f -a "show" -d 'One deploy with all its log entries'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand history; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand check" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand check" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand check" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand check" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand check" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand check" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand serve" -l listen -d 'Address and port to listen on' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand serve" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand serve" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand serve" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand serve" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand serve" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand serve" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "create" -d 'Make a token; it is printed once, and only its hash is kept'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "list" -d 'List tokens (never the tokens themselves)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "revoke" -d 'Revoke a token by name; requests with it fail from now on'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -l name -d 'A unique name, recorded as the actor of every deploy the token starts' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -l project -d 'Only these projects (repeatable) [default: any]' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -l stage -d 'Only these stages (repeatable) [default: any]' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -l can -d 'What it may do (deploy, rollback and remove need read too)' -r -f -a "deploy\t''
rollback\t''
remove\t''
read\t''"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from list" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from list" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from list" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from list" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from revoke" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from revoke" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from revoke" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from revoke" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from revoke" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "create" -d 'Make a token; it is printed once, and only its hash is kept'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "list" -d 'List tokens (never the tokens themselves)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a token by name; requests with it fail from now on'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand completions" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand completions" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand completions" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand completions" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand completions" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand completions" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand manpage" -l config -d 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand manpage" -l state -d 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]' -r -F
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand manpage" -l output -d 'How progress and results are shown' -r -f -a "auto\t'tty on a terminal, plain otherwise'
tty\t'Spinners, one per step, with elapsed time'
plain\t'One timestamped line per event (CI logs)'
json\t'One JSON object per line, then a result object'"
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand manpage" -l remote -d 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)' -r
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand manpage" -s q -l quiet -d 'Print only results and errors'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand manpage" -s v -l verbose -d 'Show every log entry (spinners are replaced by plain lines)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand manpage" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "deploy" -d 'Deploy a tag of a project\'s stage: pull, create, start, health-check, publish'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "rollback" -d 'Deploy a slot\'s previous successful image again (by digest), health-gated like a deploy'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "remove" -d 'Take one instance down on purpose: proxy host, container, record (e.g. a merged branch)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "prune" -d 'Repair and clean up: proxy hosts, orphans, interrupted deploys, TTLs, max_instances, unused images, old history'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "logs" -d 'Print an instance\'s own output: stdout to stdout, stderr to stderr'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "list" -d 'List instances, cross-checked with Docker'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "history" -d 'Show past deploys, newest first; "history show <id>" for one deploy\'s log'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "check" -d 'Check what a deploy needs: config, proxy login, state file, Docker, network, and each project\'s image in its registry with its credentials'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "serve" -d 'Run the deploy server: HTTP API with live events, registry webhooks, poller'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "token" -d 'Manage API tokens for `tiny-forge serve` (in the state file, on the server\'s host)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "completions" -d 'Print a shell completion script'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "manpage" -d 'Print the man page (roff); committed as man/tiny-forge.1'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and not __fish_seen_subcommand_from deploy rollback remove prune logs list history check serve token completions manpage help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and __fish_seen_subcommand_from history" -f -a "show" -d 'One deploy with all its log entries'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "create" -d 'Make a token; it is printed once, and only its hash is kept'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "list" -d 'List tokens (never the tokens themselves)'
complete -c tiny-forge -n "__fish_tiny_forge_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "revoke" -d 'Revoke a token by name; requests with it fail from now on'
