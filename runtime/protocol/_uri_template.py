"""RFC 6570 URI templates for resource templates: match a URI back to its variables, and expand.

Supported expressions: `{var}` (level 1: one path segment, percent-decoded, never containing `/`),
`{+var}` (level 2 reserved expansion: may span `/`), and `{?a,b}` (level 3 form-style query; every query
variable is optional). That covers what resource templates use in practice (`file:///{+path}`,
`users://{id}/profile`, `search://items{?q,limit}`).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl, quote, unquote

import attrs

_EXPRESSION: Final = re.compile(r"\{([+?]?)([A-Za-z0-9_.,]+)\}")
_VARNAME: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]*$")


@attrs.frozen
class UriTemplate:
    """A compiled template; build it with `UriTemplate.parse` (ValueError for one we cannot read)."""

    template: str
    variables: tuple[str, ...]
    _regex: re.Pattern[str] = attrs.field(repr=False, eq=False)
    _query_vars: tuple[str, ...] = attrs.field(repr=False, eq=False)

    @classmethod
    def parse(cls, template: str) -> UriTemplate:
        pattern = ["^"]
        names: list[str] = []
        query_vars: tuple[str, ...] = ()
        position = 0
        for match in _EXPRESSION.finditer(template):
            literal = template[position : match.start()]
            if "{" in literal or "}" in literal:
                raise ValueError(f"unsupported or malformed expression in URI template {template!r}")
            pattern.append(re.escape(literal))
            operator, spec = match.groups()
            var_names = spec.split(",")
            for name in var_names:
                if not _VARNAME.match(name) or name in names:
                    raise ValueError(f"bad or repeated variable {name!r} in URI template {template!r}")
                names.append(name)
            if operator == "?":
                if match.end() != len(template):
                    raise ValueError(f"a {{?...}} query expression must end the URI template {template!r}")
                query_vars = tuple(var_names)
                pattern.append(r"(?:\?(?P<__query>.*))?")
            elif len(var_names) != 1:
                raise ValueError(f"only {{?a,b}} may list several variables, in URI template {template!r}")
            elif operator == "+":
                pattern.append(f"(?P<{_group(var_names[0])}>.+?)")
            else:
                pattern.append(f"(?P<{_group(var_names[0])}>[^/?#]+)")
            position = match.end()
        rest = template[position:]
        if "{" in rest or "}" in rest:
            raise ValueError(f"unsupported or malformed expression in URI template {template!r}")
        pattern.append(re.escape(rest))
        pattern.append("$")
        return cls(template, tuple(names), re.compile("".join(pattern)), query_vars)

    @property
    def is_literal(self) -> bool:
        """True when the template has no variables (a plain resource URI)."""
        return not self.variables

    def match(self, uri: str) -> dict[str, str] | None:
        """The variables if `uri` fits the template, else None; absent query variables are left out."""
        found = self._regex.match(uri)
        if found is None:
            return None
        result: dict[str, str] = {}
        for name in self.variables:
            if name in self._query_vars:
                continue
            result[name] = unquote(found.group(_group(name)))
        if self._query_vars:
            query = found.group("__query")
            if query:
                for key, value in parse_qsl(query, keep_blank_values=True):
                    if key in self._query_vars:
                        result[key] = value
        return result

    def expand(self, values: dict[str, str]) -> str:
        """Fill the template in (percent-encoding as RFC 6570 asks); missing query variables are skipped."""

        def replace(match: re.Match[str]) -> str:
            operator, spec = match.groups()
            if operator == "?":
                pairs = [f"{n}={quote(values[n], safe='')}" for n in spec.split(",") if n in values]
                return "?" + "&".join(pairs) if pairs else ""
            value = values[spec]
            return quote(value, safe=":/?#[]@!$&'()*+,;=") if operator == "+" else quote(value, safe="")

        return _EXPRESSION.sub(replace, self.template)


def _group(name: str) -> str:
    # Regex group names cannot hold dots; variable names can.
    return "v_" + name.replace(".", "__")
