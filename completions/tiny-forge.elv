
use builtin;
use str;

set edit:completion:arg-completer[tiny-forge] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'tiny-forge'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'tiny-forge'= {
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand deploy 'Deploy a tag of a project''s stage: pull, create, start, health-check, publish'
            cand rollback 'Deploy a slot''s previous successful image again (by digest), health-gated like a deploy'
            cand remove 'Take one instance down on purpose: proxy host, container, record (e.g. a merged branch)'
            cand prune 'Repair and clean up: proxy hosts, orphans, interrupted deploys, TTLs, max_instances, unused images, old history'
            cand logs 'Print an instance''s own output: stdout to stdout, stderr to stderr'
            cand list 'List instances, cross-checked with Docker'
            cand history 'Show past deploys, newest first; "history show <id>" for one deploy''s log'
            cand check 'Check what a deploy needs: config, proxy login, state file, Docker, network, and each project''s image in its registry with its credentials'
            cand serve 'Run the deploy server: HTTP API with live events, registry webhooks, poller'
            cand token 'Manage API tokens for `tiny-forge serve` (in the state file, on the server''s host)'
            cand completions 'Print a shell completion script'
            cand manpage 'Print the man page (roff); committed as man/tiny-forge.1'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tiny-forge;deploy'= {
            cand --wait 'Wait at most this long for the lock (e.g. 5m), then exit 4'
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand --dry-run 'Show the plan and touch nothing: the digest the tag resolves to now, whether it already runs, the host name, what it replaces, what max_instances would evict'
            cand --force 'Redeploy even when the slot already runs this digest with the same settings'
            cand --no-verify 'Skip the verify step: retire the previous instance as soon as the new one serves'
            cand --no-wait 'Exit 4 at once if another run holds this stage''s lock'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;rollback'= {
            cand --to 'Return to this deploy''s image (an id from `tiny-forge history`)'
            cand --wait 'Wait at most this long for the lock (e.g. 5m), then exit 4'
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand --no-wait 'Exit 4 at once if another run holds this stage''s lock'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;remove'= {
            cand --wait 'Wait at most this long for the lock (e.g. 5m), then exit 4'
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand --no-wait 'Exit 4 at once if another run holds this stage''s lock'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;prune'= {
            cand --older-than 'Remove tag instances older than this (e.g. 7d) [default: each project''s ttl]'
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand --include-default 'Let age-based removal reach the default tag''s slot too'
            cand --dry-run 'Print exactly what would be done, and do nothing'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;logs'= {
            cand --since 'Only lines from the last DURATION (e.g. 10m)'
            cand --tail 'Only the last N lines'
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -f 'Keep printing new lines until the instance is replaced or removed'
            cand --follow 'Keep printing new lines until the instance is replaced or removed'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;list'= {
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand --probe 'Probe each running instance''s health path now (HEALTH column)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;history'= {
            cand --limit 'How many deploys'
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand show 'One deploy with all its log entries'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tiny-forge;history;show'= {
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand --follow 'Keep printing entries until the deploy ends; exit with its exit code'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;history;help'= {
            cand show 'One deploy with all its log entries'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tiny-forge;history;help;show'= {
        }
        &'tiny-forge;history;help;help'= {
        }
        &'tiny-forge;check'= {
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;serve'= {
            cand --listen 'Address and port to listen on'
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;token'= {
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand create 'Make a token; it is printed once, and only its hash is kept'
            cand list 'List tokens (never the tokens themselves)'
            cand revoke 'Revoke a token by name; requests with it fail from now on'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tiny-forge;token;create'= {
            cand --name 'A unique name, recorded as the actor of every deploy the token starts'
            cand --project 'Only these projects (repeatable) [default: any]'
            cand --stage 'Only these stages (repeatable) [default: any]'
            cand --can 'What it may do (deploy, rollback and remove need read too)'
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;token;list'= {
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;token;revoke'= {
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;token;help'= {
            cand create 'Make a token; it is printed once, and only its hash is kept'
            cand list 'List tokens (never the tokens themselves)'
            cand revoke 'Revoke a token by name; requests with it fail from now on'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tiny-forge;token;help;create'= {
        }
        &'tiny-forge;token;help;list'= {
        }
        &'tiny-forge;token;help;revoke'= {
        }
        &'tiny-forge;token;help;help'= {
        }
        &'tiny-forge;completions'= {
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;manpage'= {
            cand --config 'Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]'
            cand --state 'State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]'
            cand --output 'How progress and results are shown'
            cand --remote 'Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL (with the token in $TINY_FORGE_TOKEN)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Show every log entry (spinners are replaced by plain lines)'
            cand --verbose 'Show every log entry (spinners are replaced by plain lines)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tiny-forge;help'= {
            cand deploy 'Deploy a tag of a project''s stage: pull, create, start, health-check, publish'
            cand rollback 'Deploy a slot''s previous successful image again (by digest), health-gated like a deploy'
            cand remove 'Take one instance down on purpose: proxy host, container, record (e.g. a merged branch)'
            cand prune 'Repair and clean up: proxy hosts, orphans, interrupted deploys, TTLs, max_instances, unused images, old history'
            cand logs 'Print an instance''s own output: stdout to stdout, stderr to stderr'
            cand list 'List instances, cross-checked with Docker'
            cand history 'Show past deploys, newest first; "history show <id>" for one deploy''s log'
            cand check 'Check what a deploy needs: config, proxy login, state file, Docker, network, and each project''s image in its registry with its credentials'
            cand serve 'Run the deploy server: HTTP API with live events, registry webhooks, poller'
            cand token 'Manage API tokens for `tiny-forge serve` (in the state file, on the server''s host)'
            cand completions 'Print a shell completion script'
            cand manpage 'Print the man page (roff); committed as man/tiny-forge.1'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tiny-forge;help;deploy'= {
        }
        &'tiny-forge;help;rollback'= {
        }
        &'tiny-forge;help;remove'= {
        }
        &'tiny-forge;help;prune'= {
        }
        &'tiny-forge;help;logs'= {
        }
        &'tiny-forge;help;list'= {
        }
        &'tiny-forge;help;history'= {
            cand show 'One deploy with all its log entries'
        }
        &'tiny-forge;help;history;show'= {
        }
        &'tiny-forge;help;check'= {
        }
        &'tiny-forge;help;serve'= {
        }
        &'tiny-forge;help;token'= {
            cand create 'Make a token; it is printed once, and only its hash is kept'
            cand list 'List tokens (never the tokens themselves)'
            cand revoke 'Revoke a token by name; requests with it fail from now on'
        }
        &'tiny-forge;help;token;create'= {
        }
        &'tiny-forge;help;token;list'= {
        }
        &'tiny-forge;help;token;revoke'= {
        }
        &'tiny-forge;help;completions'= {
        }
        &'tiny-forge;help;manpage'= {
        }
        &'tiny-forge;help;help'= {
        }
    ]
    $completions[$command]
}
