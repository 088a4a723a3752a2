"""Conformance table for the substitution language (SPEC B §4 and §4.5 examples included).

Each case: template, data, mode, and either the expected output or ``Err(line)`` for a
syntax error (part "p") or ``RenderErr("fragment")`` for a render error.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailcore.language import (
    RenderLimits,
    TemplateRenderError,
    TemplateSyntaxError,
    compile_part,
)


@dataclass(frozen=True)
class Err:
    line: int
    fragment: str = ""


@dataclass(frozen=True)
class RenderErr:
    fragment: str


H, T, HD = "html", "text", "header"
CART = {
    "shopping_cart": [
        {"name": "hat", "a_nested_array": [{"key": "k1"}, {"key": "k2"}]},
        {"name": "cap", "a_nested_array": []},
    ]
}
DYN = {
    "dynamic_html": {
        "deal": '<p>Deal for {{name}}: <a href="https://x.com/d?u={{name}}">go</a></p>',
        "a": "<i>A {{loop_var}}</i>",
        "b": "<b>B</b>",
        "bad": "{{if}}",
        "self": "{{render_dynamic_content(dynamic_html.self)}}",
    },
    "dynamic_plain": {"deal": "Deal for {{name}}: https://x.com/d?u={{name}}"},
}

CASES = [
    # --- plain text and tags -------------------------------------------------------------
    ("no_tags", "Hello world", {}, H, "Hello world"),
    ("empty_template", "", {}, H, ""),
    ("simple_var", "Hi {{name}}!", {"name": "Jo"}, H, "Hi Jo!"),
    ("spaces_inside_tag", "Hi {{   name   }}!", {"name": "Jo"}, H, "Hi Jo!"),
    ("newline_inside_tag", "Hi {{\nname\n}}!", {"name": "Jo"}, T, "Hi Jo!"),
    ("space_between_braces_is_not_a_tag", "{ {name} }", {"name": "Jo"}, H, "{ {name} }"),
    ("single_braces_literal", "a {b} c", {}, H, "a {b} c"),
    ("closing_braces_literal", "a }} c", {}, H, "a }} c"),
    ("missing_key_empty", "[{{nope}}]", {}, H, "[]"),
    ("null_empty", "[{{x}}]", {"x": None}, H, "[]"),
    ("missing_nested_empty", "[{{a.b.c}}]", {"a": {}}, H, "[]"),
    ("path_through_string_is_nil", "[{{a.b}}]", {"a": "str"}, H, "[]"),
    ("two_vars_adjacent", "{{a}}{{b}}", {"a": 1, "b": 2}, T, "12"),
    ("unicode_value", "{{x}}", {"x": "héllo ✓"}, H, "héllo ✓"),
    ("unicode_template", "Grüße {{x}}", {"x": "Jo"}, T, "Grüße Jo"),
    ("multiline_text_kept", "a\n\nb\r\nc", {}, T, "a\n\nb\r\nc"),
    # --- rendering of values -------------------------------------------------------------
    ("int_renders_plain", "{{n}}", {"n": 42}, T, "42"),
    ("negative_int", "{{n}}", {"n": -7}, T, "-7"),
    ("integral_float_no_dot_zero", "{{n}}", {"n": 3.0}, T, "3"),
    ("float_renders", "{{n}}", {"n": 3.5}, T, "3.5"),
    ("float_repeating", "{{n}}", {"n": 0.1}, T, "0.1"),
    ("float_small", "{{n}}", {"n": 1e-7}, T, "1e-07"),
    ("true_renders", "{{b}}", {"b": True}, T, "true"),
    ("false_renders", "{{b}}", {"b": False}, T, "false"),
    ("array_renders_json", "{{a}}", {"a": [1, "x"]}, T, '[1,"x"]'),
    ("object_renders_json", "{{{o}}}", {"o": {"k": 1}}, H, '{"k":1}'),
    ("string_literal", "{{ 'lit' }}", {}, T, "lit"),
    ("double_quoted_literal", '{{ "lit" }}', {}, T, "lit"),
    ("string_escape", r"{{ 'it\'s' }}", {}, T, "it's"),
    ("number_literal", "{{ 12 }}", {}, T, "12"),
    ("nil_literal", "[{{ nil }}]", {}, T, "[]"),
    ("true_literal", "{{ true }}", {}, T, "true"),
    # --- html escaping -------------------------------------------------------------------
    ("spec_html_escape", "{{v}}", {"v": "<b>Hello, World</b>"}, H, "&lt;b&gt;Hello, World&lt;&#x2F;b&gt;"),
    ("escape_amp", "{{v}}", {"v": "a & b"}, H, "a &amp; b"),
    ("escape_quotes", "{{v}}", {"v": "\"q\" 'a'"}, H, "&quot;q&quot; &#x27;a&#x27;"),
    ("escape_in_attribute", '<p title="{{v}}">', {"v": 'x" onclick="y'}, H, '<p title="x&quot; onclick=&quot;y">'),
    ("triple_is_raw_in_html", "{{{v}}}", {"v": "<b>x</b>"}, H, "<b>x</b>"),
    ("triple_spaces", "{{{ v }}}", {"v": "<b>"}, H, "<b>"),
    ("text_not_escaped", "{{v}}", {"v": "<b>x</b> & y"}, T, "<b>x</b> & y"),
    ("header_not_escaped", "{{v}}", {"v": "A & B <c>"}, HD, "A & B <c>"),
    ("escape_number_untouched", "{{n}}", {"n": 5}, H, "5"),
    ("escape_already_escaped_again", "{{v}}", {"v": "&amp;"}, H, "&amp;amp;"),
    # --- URL encoding (SPEC 4.5) ---------------------------------------------------------
    (
        "spec_personalized_link",
        '<a href="https://company.com/dailydeals?user={{user}}&offercode={{offercode}}">x</a>',
        {"user": "Spark Post", "offercode": "Daily Deal!"},
        H,
        '<a href="https://company.com/dailydeals?user=Spark%20Post&offercode=Daily%20Deal%21">x</a>',
    ),
    ("spec_url_slash", "http://x.com/?g={{v}}", {"v": "ABC/ZYZ"}, H, "http://x.com/?g=ABC%2FZYZ"),
    ("spec_url_space", "http://x.com/{{v}}", {"v": "Spark Post"}, T, "http://x.com/Spark%20Post"),
    ("spec_url_bang", "https://x.com/?d={{v}}", {"v": "Daily Deal!"}, T, "https://x.com/?d=Daily%20Deal%21"),
    (
        "spec_triple_turns_url_encoding_off",
        "http://www.company.com/{{{the_entire_suffix}}}",
        {"the_entire_suffix": "groups/join?user=clark"},
        H,
        "http://www.company.com/groups/join?user=clark",
    ),
    (
        "spec_triple_host",
        '<a href="https://{{{link}}}">x</a>',
        {"link": "a.com/b?c=d e"},
        H,
        '<a href="https://a.com/b?c=d e">x</a>',
    ),
    ("url_encoding_unreserved_kept", "https://x.com/{{v}}", {"v": "a-b_c.d~e"}, H, "https://x.com/a-b_c.d~e"),
    ("url_encoding_unicode", "https://x.com/{{v}}", {"v": "é"}, H, "https://x.com/%C3%A9"),
    ("url_encoding_ampersand", "https://x.com/?a={{v}}", {"v": "a&b=c"}, H, "https://x.com/?a=a%26b%3Dc"),
    ("url_case_insensitive_scheme", "HTTPS://X.COM/{{v}}", {"v": "a b"}, H, "HTTPS://X.COM/a%20b"),
    ("url_context_ends_at_space", "https://x.com/ {{v}}", {"v": "a b"}, T, "https://x.com/ a b"),
    (
        "url_context_ends_at_quote",
        '<a href="https://x.com/">{{v}}</a>',
        {"v": "a/b"},
        H,
        '<a href="https://x.com/">a&#x2F;b</a>',
    ),
    ("url_context_ends_at_newline", "https://x.com/\n{{v}}", {"v": "a/b"}, T, "https://x.com/\na/b"),
    (
        "url_second_tag_in_query",
        "https://x.com/?a={{a}}&b={{b}}",
        {"a": "1 2", "b": "3/4"},
        T,
        "https://x.com/?a=1%202&b=3%2F4",
    ),
    ("not_url_without_scheme", '<a href="www.x.com/{{v}}">', {"v": "a b"}, H, '<a href="www.x.com/a b">'),
    ("mailto_not_url_context", '<a href="mailto:{{v}}">', {"v": "a@b.c"}, H, '<a href="mailto:a@b.c">'),
    ("url_number_value", "https://x.com/?n={{n}}", {"n": 5}, T, "https://x.com/?n=5"),
    ("url_missing_value", "https://x.com/?n={{n}}", {}, T, "https://x.com/?n="),
    ("header_no_url_encoding", "see https://x.com/{{v}}", {"v": "a b"}, HD, "see https://x.com/a b"),
    # --- expressions ---------------------------------------------------------------------
    ("dot_path", "{{a.b.c}}", {"a": {"b": {"c": "deep"}}}, T, "deep"),
    ("bracket_single_quote", "{{a['b']}}", {"a": {"b": "x"}}, T, "x"),
    ("bracket_double_quote", '{{a["b"]}}', {"a": {"b": "x"}}, T, "x"),
    ("bracket_var", "{{a[k]}}", {"a": {"b": "x"}, "k": "b"}, T, "x"),
    ("array_one_based", "{{arr[1]}}-{{arr[2]}}", {"arr": ["a", "b"]}, T, "a-b"),
    ("array_zero_is_nil", "[{{arr[0]}}]", {"arr": ["a"]}, T, "[]"),
    ("array_out_of_range_nil", "[{{arr[5]}}]", {"arr": ["a"]}, T, "[]"),
    ("array_index_var", "{{arr[i]}}", {"arr": ["a", "b"], "i": 2}, T, "b"),
    ("array_of_objects", "{{arr[2].n}}", {"arr": [{"n": 1}, {"n": 2}]}, T, "2"),
    ("length_of_array", "{{#arr}}", {"arr": [1, 2, 3]}, T, "3"),
    ("length_of_string", "{{#s}}", {"s": "abcd"}, T, "4"),
    ("length_of_missing_is_zero", "{{#nope}}", {}, T, "0"),
    ("length_in_condition", "{{if #arr > 2}}many{{end}}", {"arr": [1, 2, 3]}, T, "many"),
    ("default_with_or", "Hi {{name or 'friend'}}", {}, T, "Hi friend"),
    ("default_not_used", "Hi {{name or 'friend'}}", {"name": "Jo"}, T, "Hi Jo"),
    ("default_false_uses_default", "{{b or 'd'}}", {"b": False}, T, "d"),
    ("default_empty_string_is_true", "[{{s or 'd'}}]", {"s": ""}, T, "[]"),
    ("default_zero_is_true", "{{n or 'd'}}", {"n": 0}, T, "0"),
    ("default_chain", "{{a or b or 'c'}}", {"b": "B"}, T, "B"),
    ("and_returns_second", "{{a and 'yes'}}", {"a": 1}, T, "yes"),
    ("and_returns_first_falsy", "{{a and 'yes'}}", {"a": False}, T, "false"),
    ("not_operator", "{{not a}}", {}, T, "true"),
    ("arith_minus", "{{price - 5}}", {"price": 20}, T, "15"),
    ("arith_plus", "{{a + b}}", {"a": 1, "b": 2}, T, "3"),
    ("arith_times", "{{a * 3}}", {"a": 1.5}, T, "4.5"),
    ("arith_div_exact", "{{a / 2}}", {"a": 4}, T, "2"),
    ("arith_div_fraction", "{{a / 2}}", {"a": 5}, T, "2.5"),
    ("arith_precedence", "{{1 + 2 * 3}}", {}, T, "7"),
    ("arith_parentheses", "{{(1 + 2) * 3}}", {}, T, "9"),
    ("arith_unary_minus", "{{-a}}", {"a": 3}, T, "-3"),
    ("arith_numeric_string_coerces", "{{a + 1}}", {"a": "41"}, T, "42"),
    ("arith_float", "{{a * 0.1}}", {"a": 3}, T, "0.3"),
    ("concat_operator", "{{a .. '-' .. b}}", {"a": "x", "b": 2}, T, "x-2"),
    ("compare_eq_string", "{{if s == 'x'}}y{{end}}", {"s": "x"}, T, "y"),
    ("compare_ne", "{{if s != 'x'}}y{{else}}n{{end}}", {"s": "x"}, T, "n"),
    ("compare_lua_ne", "{{if s ~= 'x'}}y{{else}}n{{end}}", {"s": "z"}, T, "y"),
    ("compare_number_string_not_equal", "{{if n == '1'}}y{{else}}n{{end}}", {"n": 1}, T, "n"),
    ("compare_true_vs_one_not_equal", "{{if b == 1}}y{{else}}n{{end}}", {"b": True}, T, "n"),
    ("compare_int_float_equal", "{{if a == 2}}y{{end}}", {"a": 2.0}, T, "y"),
    ("compare_lt", "{{if a < 3}}y{{end}}", {"a": 2}, T, "y"),
    ("compare_ge", "{{if a >= 3}}y{{else}}n{{end}}", {"a": 2}, T, "n"),
    ("compare_strings", "{{if a < 'b'}}y{{end}}", {"a": "a"}, T, "y"),
    ("compare_nil_eq_nil", "{{if a == nil}}missing{{end}}", {}, T, "missing"),
    ("and_or_precedence", "{{if a or b and c}}y{{else}}n{{end}}", {"a": True, "b": False}, T, "y"),
    ("not_binds_tighter", "{{if not a == b}}y{{else}}n{{end}}", {"a": 1, "b": 1}, T, "n"),
    ("brace_macros", "{{opening_double_curly()}}x{{closing_double_curly()}}", {}, H, "{{x}}"),
    ("brace_macros_triple", "{{opening_triple_curly()}}{{closing_triple_curly()}}", {}, T, "{{{}}}"),
    ("brace_macros_single", "{{opening_single_curly()}}{{closing_single_curly()}}", {}, T, "{}"),
    ("empty_macro_nil", "{{if empty(a)}}e{{end}}", {}, T, "e"),
    ("empty_macro_array", "{{if empty(a)}}e{{else}}f{{end}}", {"a": []}, T, "e"),
    ("empty_macro_object", "{{if empty(a)}}e{{else}}f{{end}}", {"a": {}}, T, "e"),
    ("empty_macro_full", "{{if empty(a)}}e{{else}}f{{end}}", {"a": [1]}, T, "f"),
    ("not_empty", "{{if not empty(a)}}f{{end}}", {"a": [1]}, T, "f"),
    # --- conditionals --------------------------------------------------------------------
    ("if_true", "{{if a}}yes{{end}}", {"a": 1}, T, "yes"),
    ("if_missing", "[{{if a}}yes{{end}}]", {}, T, "[]"),
    ("if_zero_is_true", "{{if a}}yes{{end}}", {"a": 0}, T, "yes"),
    ("if_empty_string_is_true", "{{if a}}yes{{end}}", {"a": ""}, T, "yes"),
    ("if_false", "[{{if a}}yes{{end}}]", {"a": False}, T, "[]"),
    ("if_null", "[{{if a}}yes{{end}}]", {"a": None}, T, "[]"),
    ("if_then", "{{if a then}}yes{{end}}", {"a": True}, T, "yes"),
    ("if_else", "{{if a}}y{{else}}n{{end}}", {}, T, "n"),
    ("elseif_first", "{{if a == 1}}one{{elseif a == 2}}two{{else}}many{{end}}", {"a": 1}, T, "one"),
    ("elseif_second", "{{if a == 1}}one{{elseif a == 2 then}}two{{else}}many{{end}}", {"a": 2}, T, "two"),
    ("elseif_else", "{{if a == 1}}one{{elseif a == 2}}two{{else}}many{{end}}", {"a": 9}, T, "many"),
    ("elseif_none_matches", "[{{if a == 1}}one{{elseif a == 2}}two{{end}}]", {"a": 9}, T, "[]"),
    ("nested_if", "{{if a}}{{if b}}ab{{else}}a{{end}}{{end}}", {"a": 1}, T, "a"),
    ("if_keyword_prefix_is_a_variable", "{{iffy}}", {"iffy": "v"}, T, "v"),
    ("end_keyword_prefix_is_a_variable", "{{ending}}", {"ending": "v"}, T, "v"),
    # --- loops ---------------------------------------------------------------------------
    ("each_basic", "{{each arr}}{{loop_var}},{{end}}", {"arr": ["a", "b"]}, T, "a,b,"),
    ("each_fields", "{{each arr}}{{loop_var.n}};{{end}}", {"arr": [{"n": 1}, {"n": 2}]}, T, "1;2;"),
    ("each_loop_index_zero_based", "{{each arr}}{{loop_index}}{{end}}", {"arr": ["a", "b", "c"]}, T, "012"),
    ("each_null_renders_nothing", "[{{each arr}}x{{end}}]", {"arr": None}, T, "[]"),
    ("each_missing_renders_nothing", "[{{each arr}}x{{end}}]", {}, T, "[]"),
    ("each_empty_renders_nothing", "[{{each arr}}x{{end}}]", {"arr": []}, T, "[]"),
    ("each_object_iterates_values", "{{each o}}{{loop_var}}{{end}}", {"o": {"a": 1, "b": 2}}, T, "12"),
    ("each_escapes_in_html", "{{each arr}}{{loop_var}}{{end}}", {"arr": ["<"]}, H, "&lt;"),
    ("each_path", "{{each a.b}}{{loop_var}}{{end}}", {"a": {"b": [1, 2]}}, T, "12"),
    (
        "spec_nested_loop_vars",
        "{{each shopping_cart}}{{loop_var.name}}:{{each loop_vars.shopping_cart.a_nested_array}} "
        "{{loop_vars.a_nested_array.key}}{{end}};{{end}}",
        CART,
        T,
        "hat: k1 k2;cap:;",
    ),
    (
        "nested_loop_var_is_innermost",
        "{{each a}}{{each loop_var}}{{loop_var}}{{end}}|{{end}}",
        {"a": [[1, 2], [3]]},
        T,
        "12|3|",
    ),
    (
        "nested_loop_outer_via_loop_vars",
        "{{each a}}{{each b}}{{loop_vars.a}}{{loop_var}} {{end}}{{end}}",
        {"a": ["x", "y"], "b": [1, 2]},
        T,
        "x1 x2 y1 y2 ",
    ),
    ("loop_var_outside_loop_reads_data", "{{loop_var}}", {"loop_var": "d"}, T, "d"),
    ("each_if_inside", "{{each arr}}{{if loop_var > 1}}{{loop_var}}{{end}}{{end}}", {"arr": [1, 2, 3]}, T, "23"),
    (
        "each_with_index_arith",
        "{{each arr}}{{loop_index + 1}}.{{loop_var}} {{end}}",
        {"arr": ["a", "b"]},
        T,
        "1.a 2.b ",
    ),
    (
        "each_url_in_loop",
        "{{each arr}}https://x.com/?i={{loop_var}}\n{{end}}",
        {"arr": ["a b"]},
        T,
        "https://x.com/?i=a%20b\n",
    ),
    ("each_length_of_loop_var", "{{each arr}}{{#loop_var}}{{end}}", {"arr": [[1, 2], []]}, T, "20"),
    # --- whitespace rules ----------------------------------------------------------------
    ("statement_line_removed", "a\n{{if x}}\nb\n{{end}}\nc\n", {"x": 1}, T, "a\nb\nc\n"),
    ("statement_line_removed_false", "a\n{{if x}}\nb\n{{end}}\nc\n", {}, T, "a\nc\n"),
    ("statement_line_with_indent_removed", "a\n   {{if x}}   \nb\n\t{{end}}\t\nc", {"x": 1}, T, "a\nb\nc"),
    ("statement_line_crlf_removed", "a\r\n{{if x}}\r\nb\r\n{{end}}\r\nc\r\n", {"x": 1}, T, "a\r\nb\r\nc\r\n"),
    (
        "each_lines_removed",
        "<ul>\n{{each arr}}\n  <li>{{loop_var}}</li>\n{{end}}\n</ul>",
        {"arr": [1, 2]},
        H,
        "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>",
    ),
    ("else_and_elseif_lines_removed", "{{if a}}\nA\n{{elseif b}}\nB\n{{else}}\nC\n{{end}}\n", {"b": 1}, T, "B\n"),
    (
        "two_statements_on_one_line_removed",
        "x\n{{if a}}{{if b}}\nab\n{{end}} {{end}}\ny",
        {"a": 1, "b": 1},
        T,
        "x\nab\ny",
    ),
    ("trailing_ws_after_statement_dropped", "Hi {{if a}}   \nthere{{end}}", {"a": 1}, T, "Hi \nthere"),
    ("content_after_end_kept_on_line", "{{if a}}\nA\n{{end}} tail\nnext", {"a": 1}, T, "A\n tail\nnext"),
    ("content_before_statement_keeps_line", "x {{if a}}\ny\n{{end}}\n", {"a": 1}, T, "x \ny\n"),
    ("expression_line_keeps_newline", "a\n{{v}}\nb", {"v": ""}, T, "a\n\nb"),
    ("expression_and_statement_line_kept", "{{if a}}{{v}}\n{{end}}\n", {"a": 1, "v": "V"}, T, "V\n"),
    ("statement_at_end_without_newline", "a\n{{if x}}\nb\n{{end}}", {"x": 1}, T, "a\nb\n"),
    ("statement_first_line", "{{if x}}\nb\n{{end}}\n", {"x": 1}, T, "b\n"),
    ("whitespace_rule_in_html", "<p>\n  {{if x}}\n  <b>y</b>\n  {{end}}\n</p>", {"x": 1}, H, "<p>\n  <b>y</b>\n</p>"),
    ("inline_if_keeps_spaces", "a {{if x}}b{{end}} c", {"x": 1}, T, "a b c"),
    # --- dynamic content -----------------------------------------------------------------
    (
        "dynamic_html_rendered_unescaped",
        "<div>{{render_dynamic_content(dynamic_html.deal)}}</div>",
        {**DYN, "name": "A B"},
        H,
        '<div><p>Deal for A B: <a href="https://x.com/d?u=A%20B">go</a></p></div>',
    ),
    ("dynamic_html_triple_braces", "{{{render_dynamic_content(dynamic_html.b)}}}", DYN, H, "<b>B</b>"),
    (
        "dynamic_plain",
        "{{render_dynamic_content(dynamic_plain.deal)}}",
        {**DYN, "name": "Jo"},
        T,
        "Deal for Jo: https://x.com/d?u=Jo",
    ),
    (
        "dynamic_in_each",
        "{{each picks}}{{render_dynamic_content(dynamic_html[loop_var])}}{{end}}",
        {**DYN, "picks": ["b", "a"]},
        H,
        "<b>B</b><i>A a</i>",
    ),
    ("dynamic_missing_key_empty", "[{{render_dynamic_content(dynamic_html.nope)}}]", DYN, H, "[]"),
    ("dynamic_no_dynamic_object", "[{{render_dynamic_content(dynamic_html.x)}}]", {}, H, "[]"),
    (
        "dynamic_bad_chunk_is_render_error",
        "{{render_dynamic_content(dynamic_html.bad)}}",
        DYN,
        H,
        RenderErr("dynamic content"),
    ),
    (
        "dynamic_recursion_is_bounded",
        "{{render_dynamic_content(dynamic_html.self)}}",
        DYN,
        H,
        RenderErr("nested too deeply"),
    ),
    # --- syntax errors -------------------------------------------------------------------
    ("err_spec_line", "a\nb\nc\n{{if name age}}\n{{end}}", {}, H, Err(4, "syntax error near 'age'")),
    ("err_unclosed_tag", "x\n{{name", {}, H, Err(2, "unclosed tag")),
    ("err_unclosed_triple", "{{{name}}", {}, H, Err(1)),
    ("err_empty_tag", "{{}}", {}, H, Err(1, "empty")),
    ("err_unclosed_if", "line1\n{{if a}}\nx", {}, H, Err(2, "'end' expected")),
    ("err_unclosed_each", "{{each a}}", {}, T, Err(1, "'end' expected")),
    ("err_stray_end", "a\n\n{{end}}", {}, T, Err(3, "'end'")),
    ("err_stray_else", "{{else}}", {}, T, Err(1, "else")),
    ("err_stray_elseif", "{{elseif a}}", {}, T, Err(1, "elseif")),
    ("err_elseif_after_else", "{{if a}}{{else}}\n{{elseif b}}{{end}}", {}, T, Err(2, "elseif")),
    ("err_double_else", "{{if a}}{{else}}{{else}}{{end}}", {}, T, Err(1)),
    ("err_if_without_condition", "{{if}}{{end}}", {}, T, Err(1, "syntax error")),
    ("err_each_in_else_of_each", "{{each a}}{{else}}{{end}}", {}, T, Err(1)),
    ("err_unknown_function", "\n{{foo(1)}}", {}, T, Err(2, "unknown function 'foo'")),
    ("err_render_snippet_unsupported", "{{render_snippet('x')}}", {}, T, Err(1, "unknown function")),
    ("err_dynamic_wrong_root", "{{render_dynamic_content(name)}}", {}, T, Err(1, "dynamic_html")),
    ("err_dynamic_inside_expression", "{{render_dynamic_content(dynamic_html.a) or 'x'}}", {}, T, Err(1)),
    ("err_unbalanced_paren", "{{(a}}", {}, T, Err(1, "syntax error")),
    ("err_trailing_operator", "{{a +}}", {}, T, Err(1, "syntax error near '}}'")),
    ("err_unfinished_string", "{{ 'abc }}", {}, T, Err(1)),
    ("err_bad_symbol", "{{ a @ b }}", {}, T, Err(1, "unexpected symbol")),
    ("err_keyword_as_value", "{{ then }}", {}, T, Err(1, "syntax error near 'then'")),
    ("err_line_counts_crlf", "a\r\nb\r\n{{a b}}", {}, T, Err(3)),
    ("err_line_inside_each", "{{each a}}\n{{loop_var.}}\n{{end}}", {}, T, Err(2)),
    ("err_else_with_condition", "{{if a}}{{else b}}{{end}}", {}, T, Err(1, "near 'b'")),
    ("err_end_with_junk", "{{if a}}{{end x}}", {}, T, Err(1, "near 'x'")),
    ("err_macro_with_args", "{{opening_double_curly(1)}}", {}, T, Err(1)),
    ("err_deep_expression", "{{" + "(" * 60 + "a" + ")" * 60 + "}}", {}, T, Err(1, "too deeply")),
    ("err_deep_blocks", "{{if a}}" * 60 + "{{end}}" * 60, {}, T, Err(1, "too deeply")),
    ("err_deep_loops", "{{each a}}" * 20 + "{{end}}" * 20, {}, T, Err(1, "too deeply")),
    # --- render errors -------------------------------------------------------------------
    ("render_err_arith_on_string", "{{a + 1}}", {"a": "abc"}, T, RenderErr("arithmetic on a string")),
    ("render_err_arith_on_nil", "{{a + 1}}", {}, T, RenderErr("arithmetic on a nil")),
    ("render_err_divide_by_zero", "{{a / 0}}", {"a": 1}, T, RenderErr("divide by zero")),
    ("render_err_compare_mixed", "{{if a < 1}}x{{end}}", {"a": "s"}, T, RenderErr("compare string with number")),
    ("render_err_compare_nil", "{{if a > 1}}x{{end}}", {}, T, RenderErr("compare nil with number")),
    ("render_err_each_on_string", "{{each a}}x{{end}}", {"a": "s"}, T, RenderErr("'each' expects an array")),
    ("render_err_concat_nil", "{{a .. 'x'}}", {}, T, RenderErr("concatenate a nil")),
]


def _ids() -> list[str]:
    return [c[0] for c in CASES]


def test_the_table_has_at_least_150_unique_cases() -> None:
    assert len(CASES) >= 150
    assert len(set(_ids())) == len(CASES)


@pytest.mark.parametrize(("name", "template", "data", "mode", "expected"), CASES, ids=_ids())
def test_conformance(name: str, template: str, data: dict, mode: str, expected: object) -> None:
    if isinstance(expected, Err):
        with pytest.raises(TemplateSyntaxError) as info:
            compile_part(template, part="p", mode=mode)
        assert info.value.part == "p"
        assert info.value.line == expected.line, info.value.description
        assert expected.fragment in info.value.description
        assert info.value.description.startswith(f"Error while compiling part p: line {expected.line}: ")
        return
    compiled = compile_part(template, part="p", mode=mode)
    if isinstance(expected, RenderErr):
        with pytest.raises(TemplateRenderError) as rinfo:
            compiled.render(data)
        assert rinfo.value.part == "p"
        assert expected.fragment in rinfo.value.description
        return
    assert compiled.render(data) == expected


def test_spec_error_message_reads_like_sparkpost() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_part("a\nb\nc\n{{if name age}}\n{{end}}", part="html", mode="html")
    assert str(info.value) == "Error while compiling part html: line 4: syntax error near 'age'"
    assert info.value.part == "html"
    assert info.value.line == 4


def test_loop_iteration_limit_is_a_render_error() -> None:
    compiled = compile_part("{{each a}}{{each a}}x{{end}}{{end}}", part="text", mode="text")
    data = {"a": list(range(400))}
    with pytest.raises(TemplateRenderError, match="loop iterations"):
        compiled.render(data)
    assert len(compiled.render(data, limits=RenderLimits(max_loop_iterations=200_000))) == 160_000


def test_output_size_limit_is_a_render_error() -> None:
    compiled = compile_part("{{each a}}{{v}}{{end}}", part="html", mode="html")
    data = {"a": list(range(100)), "v": "x" * 1000}
    with pytest.raises(TemplateRenderError, match="exceeds 50000 characters"):
        compiled.render(data, limits=RenderLimits(max_output_size=50_000))
    assert len(compiled.render(data)) == 100_000


def test_output_size_limit_applies_without_loops() -> None:
    compiled = compile_part("{{v}}{{v}}", part="text", mode="text")
    with pytest.raises(TemplateRenderError, match="exceeds"):
        compiled.render({"v": "x" * 60}, limits=RenderLimits(max_output_size=100))


def test_one_recipients_error_does_not_affect_the_next() -> None:
    compiled = compile_part("{{each a}}{{100 / loop_var}} {{end}}", part="text", mode="text")
    with pytest.raises(TemplateRenderError):
        compiled.render({"a": [1, 0]})
    assert compiled.render({"a": [4, 5]}) == "25 20 "


def test_compile_once_render_many_is_deterministic() -> None:
    compiled = compile_part("Hi {{name}}{{each a}} {{loop_var}}{{end}}", part="text", mode="text")
    outs = [compiled.render({"name": str(i), "a": list(range(i))}) for i in range(5)]
    assert outs == ["Hi 0", "Hi 1 0", "Hi 2 0 1", "Hi 3 0 1 2", "Hi 4 0 1 2 3"]


def test_template_text_cannot_inject_python() -> None:
    nasty = "{{a['__import__(\"os\")']}}{{ \"'); import os; ('\" }}\\n'''\"\"\""
    compiled = compile_part(nasty, part="text", mode="text")
    assert compiled.render({}) == "'); import os; ('\\n'''\"\"\""
