#!/bin/sh
# Entry point of the ctpipeline image: secrets from files, then exec the command.
#
# For every environment variable NAME_FILE that names a readable file (a compose secret under /run/secrets),
# NAME is exported with the file's content (trailing newline dropped) and NAME_FILE is unset, as the official
# postgres image does for POSTGRES_PASSWORD_FILE. So a password reaches the process environment of mlflow,
# prefect or ctp, never a command line (ps shows command lines) and never the image.
# Setting both NAME and NAME_FILE is an error (which one wins would be a guess).
set -eu

for pair in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
    file=$(printenv "${pair}_FILE")
    if printenv "$pair" >/dev/null 2>&1; then
        echo "ctp-entrypoint: both $pair and ${pair}_FILE are set; set only one" >&2
        exit 2
    fi
    if [ ! -r "$file" ]; then
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
