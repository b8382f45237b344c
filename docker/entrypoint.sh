#!/bin/sh
# Entry point of the ctpipeline image: secrets from files, then exec the command.
#
# For every environment variable NAME_FILE whose value is a file in the secrets folder ($CTP_SECRETS_DIR, default
# /run/secrets, where compose mounts its secrets), NAME is exported with the file's content (trailing newline
# dropped) and NAME_FILE is unset, as the official postgres image does for POSTGRES_PASSWORD_FILE. So a password
# reaches the process environment of mlflow, prefect or ctp, never a command line (ps shows command lines) and
# never the image. Other *_FILE variables (e.g. a CA bundle's path) are left as they are.
# Setting both NAME and NAME_FILE, or naming a file of the secrets folder that cannot be read, is an error.
set -eu

secrets_dir=${CTP_SECRETS_DIR:-/run/secrets}
for pair in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
    file=$(printenv "${pair}_FILE")
    case "$file" in
        "$secrets_dir"/*) ;;
        *) continue ;;
    esac
    if printenv "$pair" >/dev/null 2>&1; then
        echo "ctp-entrypoint: both $pair and ${pair}_FILE are set; set only one" >&2
        exit 2
    fi
    if [ ! -f "$file" ] || [ ! -r "$file" ]; then
        echo "ctp-entrypoint: ${pair}_FILE=$file is not a readable file" >&2
        exit 2
    fi
    value=$(cat "$file")
    export "$pair=$value"
    unset "${pair}_FILE"
done

if [ "$#" -eq 0 ]; then
    set -- ctp --help
fi
exec "$@"
