"""Differential tests of reasonrt's Jinja interpreter against Python's jinja2 (configured
as transformers does, hf_jinja.py), one construct at a time: output must be byte-identical,
and a snippet that makes jinja2 raise must make reasonrt fail too.
"""
import json
import os
import subprocess

import pytest

import hf_jinja

CLI = os.environ.get("RRT_CLI")
pytestmark = pytest.mark.skipif(not CLI, reason="RRT_CLI not set")

MSGS = [
    {"role": "system", "content": "sys"},
    {"role": "user", "content": "Hello <b>&'\"</b>"},
    {"role": "assistant", "content": "<think>\nr\n</think>\n\nHi", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {"x": 1, "y": [1.5, None, True]}}}]},
    {"role": "user", "content": "  Ünïcödé 🙂 text\n"},
]

SNIPPETS = [
    # output of values: Python str() and repr()
    "{{ 1 }}|{{ 1.0 }}|{{ -0.0 }}|{{ 1e-5 }}|{{ 1.5e16 }}|{{ 123456789.125 }}|{{ 0.1 + 0.2 }}|{{ 1e300 * 1e300 }}",
    "{{ true }}|{{ none }}|{{ [1, 'a', none, false] }}|{{ {'k': 'v', 'n': [1, {'x': none}]} }}|{{ ('t',) }}|{{ () }}",
    "{{ ['it\\'s', 'say \"hi\"', 'both \\' \"', 'tab\\tnl\\n', '\\x01\\x7f', 'é', '\\u200b', '\\U0001F642'] }}",
    "{{ messages[1] }}",
    "{{ messages[2].tool_calls }}",
    "{{ undefined_name }}|{{ messages[0].nope }}|{{ messages[9] }}",
    # arithmetic and operators
    "{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}",
    "{{ 'ab' * 3 }}{{ 3 * 'x' }}{{ [1] * 2 }}{{ 'a' ~ 1 ~ none ~ true }}{{ [1] + [2] }}{{ 1 + 2.5 }}{{ true + 1 }}",
    "{{ -3 | abs }} {{ -(2) }} {{ +2 }} {{ not 0 }} {{ 1 and 'x' }} {{ 0 or '' or 'z' }} {{ none or 0 }}",
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ 1 == 1.0 }} {{ (1,) == [1] }} {{ 'x' != 'y' }}",
    "{{ 'b' in 'abc' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ 'x' in nothing }}",
    "{{ 'x' if 1 else 'y' }}{{ 'x' if 0 else 'y' }}{{ 'x' if 0 }}|{{ 1 if 0 else 2 if 0 else 3 }}",
    "{{ 'a' 'b' }}{{ \"c\" }}{{ 1_000 }}{{ 0.5e1 }}",
    # strings and methods
    "{{ messages[1].content.upper() }}|{{ 'Hello World'.lower() }}|{{ 'hello wORLD foo-bar'.title() }}|{{ 'hELLO'.capitalize() }}",
    "{{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nA\\n'.lstrip('\\n') }}|{{ 'A\\n\\n'.rstrip() }}|{{ '\\u3000 a \\xa0'.strip() }}",
    "{{ 'a,b,,c'.split(',') }}|{{ ' a  b \\n c '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ ''.split() }}",
    "{{ 'x</think>y</think>z'.split('</think>')[-1] }}|{{ 'x</think>y'.split('</think>')[0] }}",
    "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'bc')) }}{{ 'abc'.find('c') }}{{ 'abc'.find('z') }}{{ 'aaa'.count('a') }}",
    "{{ 'a-b-c'.replace('-', '+') }}|{{ 'a-b-c'.replace('-', '', 1) }}|{{ 'ab'.replace('', '.') }}",
    "{{ ', '.join(['a', 'b']) }}|{{ 'l1\\nl2\\r\\nl3'.splitlines() }}|{{ '123'.isdigit() }}{{ 'ab'.isalpha() }}{{ ''.isdigit() }}",
    "{{ 'héllo wörld'[1] }}|{{ 'héllo'[-1] }}|{{ 'héllo'[1:3] }}|{{ 'abcdef'[::2] }}|{{ 'abc'[::-1] }}|{{ 'abc'[5:] }}",
    "{{ [1,2,3,4][1:] }}{{ [1,2,3,4][:-1] }}{{ [1,2,3,4][::-1] }}{{ [1,2,3,4][-2:] }}{{ [1,2,3][10:] }}{{ (1,2,3)[1:] }}",
    "{{ 'prefix-x'.removeprefix('prefix-') }}|{{ 'x.txt'.removesuffix('.txt') }}",
    # filters
    "{{ messages | length }}|{{ 'héllo' | length }}|{{ {'a': 1} | count }}|{{ nothing | length }}",
    "{{ messages[2].tool_calls[0].function.arguments | tojson }}",
    "{{ {'b': 1, 'a': [1, 2.0, none, true, 'é\"\\n']} | tojson }}|{{ {'b': 1, 'a': 2} | tojson(indent=2) }}",
    "{{ {'b': 1, 'a': {}} | tojson(sort_keys=true) }}|{{ [] | tojson(indent=4) }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ [1,2] | tojson(separators=(',', ':')) }}",
    "{{ '  a  ' | trim }}|{{ 'xax' | trim('x') }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ 'hello-world (foo)' | title }}|{{ 'hELLO' | capitalize }}",
    "{{ [1, 2, 3] | join(', ') }}|{{ [1, 2] | join }}|{{ messages | map(attribute='role') | join('/') }}",
    "{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}{{ 'abc' | first }}{{ [] | first }}|{{ [3, 1, 2] | sort }}{{ [3, 1, 2] | sort(reverse=true) }}",
    "{{ ['b', 'A', 'a', 'C'] | sort }}|{{ ['b', 'A', 'a', 'C'] | sort(case_sensitive=true) }}|{{ messages | sort(attribute='role') | map(attribute='role') | list }}",
    "{{ nothing | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ none | d('x') }}|{{ 0 | default(5, boolean=true) }}",
    "{{ [1, 2, 2, 'a', 'A'] | unique | list }}|{{ [3, 1] | reverse | list }}|{{ 'abc' | reverse }}|{{ 'ab' | list }}",
    "{{ {'b': 2, 'a': 1} | dictsort }}|{{ {'b': 1, 'a': 2} | dictsort(by='value') }}|{{ {'x': 1, 'y': 2} | items | list }}",
    "{{ [1, 2, 3, 4] | select('even') | list }}|{{ [1, 2, 3] | reject('odd') | list }}|{{ [0, 1, '', 'a'] | select | list }}",
    "{{ messages | selectattr('role', 'equalto', 'user') | list | length }}|{{ messages | rejectattr('role', 'eq', 'user') | map(attribute='role') | list }}",
    "{{ messages | selectattr('tool_calls', 'defined') | list | length }}|{{ messages | map(attribute='nope', default='-') | list }}",
    "{{ [1, 2.5] | sum }}|{{ [3, 1, 2] | min }}|{{ [3, 1, 2] | max }}|{{ ['b', 'A'] | max }}|{{ messages | map(attribute='content') | map('length') | list }}",
    "{{ '3' | int + 1 }}|{{ '3.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ '2.5' | float }}|{{ 3 | float }}|{{ 2.567 | round(2) }}|{{ 2.5 | round }}|{{ 2.1 | round(0, 'ceil') }}",
    "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}|{{ 'a\\nb' | indent('> ') }}",
    "{{ '<a href=\"x\">&</a>' | e }}|{{ 'x' | safe }}|{{ 42 | string }}|{{ 'one two  three' | wordcount }}|{{ 'ab' | center(7) }}|",
    "{{ [1, 2] | string }}|{{ messages[0] | attr('role') }}|{{ 'a,b' | replace(',', ';') }}",
    # tests
    "{{ 1 is number }}{{ true is number }}{{ 1 is integer }}{{ true is integer }}{{ 1.0 is float }}{{ 'x' is string }}{{ {} is mapping }}{{ [] is sequence }}{{ 'x' is iterable }}",
    "{{ nothing is defined }}{{ nothing is undefined }}{{ none is none }}{{ 0 is none }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ true is boolean }}",
    "{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 2 is in [1, 2] }}{{ raise_exception is callable }}",
    "{{ 1 is eq 1 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 2 is le 2 }}{{ 3 is gt 2 }}{{ 3 is ge 4 }}{{ 1 is sameas 1 }}{{ none is sameas none }}",
    "{{ messages[0].content is not none }}{{ messages[2].tool_calls is defined and messages[2].tool_calls | length > 0 }}{{ not messages[0].x is defined }}",
    # statements
    "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}",
    "{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ loop.nextitem.role if loop.nextitem is defined }} {% endfor %}",
    "{% for m in messages %}{{ loop.cycle('a', 'b', 'c') }}{% endfor %}",
    "{% for m in messages if m.role == 'user' %}{{ loop.index }}{{ loop.length }}{{ m.content | length }};{% endfor %}",
    "{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for x in [] %}a{% else %}empty{% endfor %}{% for x in nothing %}b{% else %}none{% endfor %}",
    "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'x': 1} %}{{ k }}{% endfor %}",
    "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}{% for c in 'hé' %}[{{ c }}]{% endfor %}",
    "{% for i in range(3) %}{% for j in range(i) %}{{ i }}{{ j }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}",
    "{% for i in range(10, 0, -3) %}{{ i }},{% endfor %}{{ range(3) | list }}",
    "{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
    "{% for i in range(3) %}{% if i == 1 %}{% set y = 5 %}{% endif %}{{ y }}{% endfor %}{{ y }}",
    "{% if true %}{% set z = 2 %}{% endif %}{{ z }}{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}",
    "{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% set ns.s = ns.s ~ m.role[0] %}{% endfor %}{{ ns.n }}{{ ns.s }}",
    "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c }}",
    "{% set block %}inner {{ 1 + 1 }}{% endset %}[{{ block }}]",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(punct='.', name='C') }}",
    "{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(4) }}",
    "{% macro m() %}{{ messages | length }}{% endmacro %}{{ m() }}",
    "{% if messages[0].role == 'system' %}S{% elif messages[0].role == 'user' %}U{% else %}O{% endif %}{% if 0 %}a{% elif 0 %}b{% endif %}",
    "{% raw %}{{ not rendered }}{% endraw %}|{%- raw -%}  {{ x }}  {%- endraw -%}|",
    "{# a comment #}x{# multi\nline #}y",
    "{{ dict(a=1, b='x') }}|{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b') }}{{ {'a': 1}.get('b', 2) }}|{{ {'a': 1}.keys() | list }}{{ {'a': 1}.values() | list }}",
    "{% set j = joiner(', ') %}{% for i in range(3) %}{{ j() }}{{ i }}{% endfor %}",
    "{{ messages[1]['content'] }}|{{ messages[1].content[0] }}|{{ messages.0.role }}|{{ messages[-1].role }}",
    # whitespace control, trim_blocks, lstrip_blocks
    "a\n  {% if true %}\n  b\n  {% endif %}\nc",
    "a  {% if true %}b{% endif %}  \n  {{ 'c' }}  \n",
    "a\n  {# c #}\nb\n  {%+ if true %}x{% endif %}\n",
    "x  {%- if true -%}  y  {%- endif -%}  z\n\n",
    "{{- ' a ' -}}  \n  {{- 'b' }}  {{ 'c' -}}  \n d",
    "line1\r\nline2\rline3\n",
    "{% for m in messages %}\n  {{ m.role }}\n{% endfor %}\n",
    "{%- for m in messages -%}\n    {%- if m.role == 'user' -%}\n        U:{{ m.content }}\n    {%- endif -%}\n{%- endfor -%}",
    "  {% set x = 1 %}\n  {{ x }}\n",
    # errors jinja2 raises: reasonrt must fail too
    "{{ raise_exception('no system message') }}",
    "{{ nothing.attr }}",
    "{{ 'a' + 1 }}",
    "{{ 1 + 'a' }}",
    "{{ nothing + 'x' }}",
    "{{ 1 / 0 }}",
    "{{ 1 // 0 }}",
    "{{ none | length }}",
    "{% for x in 5 %}{% endfor %}",
    "{{ [1, 'a'] | sort }}",
    "{{ 1 < 'a' }}",
    "{{ 'x' | nosuchfilter }}",
    "{{ 1 is nosuchtest }}",
    "{% set x = 1 %}{% set x.y = 2 %}",
    "{{ 'a'.nosuchmethod() }}",
    "{{ messages[0]() }}",
    "{% for a, b in [1, 2] %}{% endfor %}",
    "{% if true %}unclosed",
    "{{ 'unclosed string }}",
    "{% endif %}",
    "{% include 'x.j2' %}",
    "{{ 1 + }}",
    "{{ [1, 2 }}",
]


def run(tmp_path, cases):
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run([CLI, "chat-template", "--batch", "--messages", str(path)],
                         check=True, capture_output=True).stdout
    return json.loads(out.decode("utf-8"))


def test_snippets_match_jinja2(tmp_path):
    env = hf_jinja.environment()
    cases = [{"template": s, "messages": MSGS, "add_generation_prompt": True} for s in SNIPPETS]
    results = run(tmp_path, cases)
    failures = []
    for snippet, case, got in zip(SNIPPETS, cases, results):
        want = hf_jinja.render(env, snippet, {}, case)
        if want is None:
            if "error" not in got:
                failures.append(f"{snippet!r}: jinja2 raises, reasonrt rendered {got['text']!r}")
        elif got.get("text") != want:
            failures.append(f"{snippet!r}:\n   jinja2:   {want!r}\n   reasonrt: {got.get('text', got.get('error'))!r}")
    assert not failures, f"{len(failures)} of {len(SNIPPETS)} snippets differ:\n" + "\n".join(failures)
