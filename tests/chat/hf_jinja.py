"""Renders chat templates with Python's jinja2 configured as transformers'
apply_chat_template configures it (the reference reasonrt's interpreter must match byte
for byte): an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and the loop
controls extension; `tojson` as json.dumps with ensure_ascii=False; `raise_exception` and
`strftime_now` as globals; the special tokens of tokenizer_config.json as variables.

Written from transformers' documented behaviour, not copied from it.
"""
import datetime
import json

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

SPECIAL_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


class TemplateError(Exception):
    pass


def _raise_exception(message):
    raise TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt):
    return datetime.datetime.now().strftime(fmt)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def special_tokens(config):
    """The special-token variables transformers passes: those the config sets."""
    out = {}
    for key in SPECIAL_KEYS:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            out[key] = value
    return out


def render(env, source, specials, case):
    """The rendered text, or None when jinja2 raises."""
    kwargs = dict(specials)
    kwargs.update(case.get("extra") or {})
    try:
        return env.from_string(source).render(
            messages=case["messages"], tools=case.get("tools"), documents=None,
            add_generation_prompt=case.get("add_generation_prompt", True), **kwargs)
    except Exception:  # any template error: reasonrt must fail too
        return None
