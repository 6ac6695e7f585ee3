"""Validates a Compose file against the Compose Specification as `docker compose config` would
see it: ${VAR} references are interpolated from the given env file first (a variable the file
does not define, with no default, is an error), `include` entries are validated with the same
env file (the example stands for the real file they name), and the result goes to check-jsonschema's vendored Compose schema.

    python3 deploy/checks/compose.py COMPOSE_FILE [ENV_FILE]
"""

import pathlib
import re
import subprocess
import sys
import tempfile

import ruamel.yaml

REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def read_env(path):
    values = {}
    for line in pathlib.Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text, env, where):
    def substitute(match):
        if match.group(0) == "$$":
            return "$$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3)
        value = env.get(name)
        if value not in (None, "") or (value == "" and operator in ("-", "?")):
            return value
        if operator in (":-", "-"):
            return argument
        raise SystemExit(f"{where}: ${{{name}}} is not set by the env file")

    return REFERENCE.sub(substitute, text)


def validate(compose, env_file):
    env = read_env(env_file) if env_file else {}
    where = f"{compose} with {env_file or 'no env file'}"
    text = interpolate(compose.read_text(), env, where)
    document = ruamel.yaml.YAML(typ="safe").load(text)
    for entry in document.get("include", []):
        if isinstance(entry, dict):
            # The given env file stands for the real one the entry names (its example).
            validate(compose.parent / entry["path"], env_file)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as rendered:
        rendered.write(text)
        rendered.flush()
        result = subprocess.run(
            ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", rendered.name],
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        raise SystemExit(f"{where}: not a valid Compose file\n{result.stdout}{result.stderr}")
    print(f"ok  {where}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    validate(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]) if len(sys.argv) == 3 else None)
