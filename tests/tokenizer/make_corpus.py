"""Builds the tokenizer test corpus: >= 10,000 strings across scripts and shapes, seeded.

    python3 make_corpus.py OUT.json
"""
import json
import random
import sys

rng = random.Random(20261122)

ENGLISH = ("The quick brown fox jumps over the lazy dog. I'm sure they'll say it's fine; "
           "we've done it, haven't we? Don't worry -- 'tis the season.").split()
CHINESE = "人工智能正在改变世界我们需要更多的推理能力深度求索模型在数学和代码上表现出色"
JAPANESE = "これは日本語のテストです。カタカナとひらがなと漢字を混ぜます。東京タワー"
KOREAN = "안녕하세요 세계 한국어 토크나이저 테스트입니다 추론 모델"
ARABIC = "مرحبا بالعالم هذا اختبار للنموذج العربي والأرقام ١٢٣"
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇯🇵", "🤖", "🧠", "✨", "🙏🏿"]
CODE = [
    "def f(x):\n    return x ** 2 + 1\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "fn main() { println!(\"{}\", 42); }",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "const x = await fetch(`https://example.com/${id}`);",
    "#include <vector>\nstd::vector<int> v{1, 2, 3};",
    "if [ -f ~/.bashrc ]; then source ~/.bashrc; fi",
    "<div class=\"a\">Hello &amp; welcome</div>",
]
LATEX = [r"\frac{a}{b} + \sqrt{x^2 + y^2} = \boxed{42}", r"$\int_0^1 x\,dx = \tfrac{1}{2}$",
         r"\begin{align} e^{i\pi} + 1 &= 0 \end{align}", "∀x ∈ ℝ, x² ≥ 0 ⇒ √(x²) = |x|"]
SPACES = [" ", "  ", "\t", "\n", "\n\n", "\r\n", "   \n  ", " \t \n", "\u3000", "\u00a0"]
# Characters assigned in Unicode 15.0 (new since PCRE2's tables; reasonrt stands them in).
UNICODE_15 = ["🪼", "🪭", "🫨", "🩷", "\U0001f77b", "\U00031350", "\U00011f04", "\u0cf3"]
# Random characters come from blocks complete by Unicode 15.0: the oracle (Node's ICU) may
# know Unicode 16, which neither Hugging Face's Oniguruma nor reasonrt does.
RANGES = [(0xA0, 0x2FF), (0x370, 0x3FF), (0x400, 0x4FF), (0x5D0, 0x5EA), (0x620, 0x64A),
          (0x900, 0x97F), (0xE01, 0xE5B), (0x2010, 0x2064), (0x2190, 0x23FF), (0x2500, 0x27BF),
          (0x3000, 0x303F), (0xAC00, 0xD7A3), (0x1F300, 0x1F5FF), (0x1F900, 0x1F9FF)]
SPECIAL_LOOKING = ["<｜User｜>", "</think>", "<think>", "<|im_start|>", "<|begin_of_text|>",
                   "<｜end▁of▁sentence｜>", "<|endoftext|>"]


def number():
    n = rng.randint(1, 40)
    s = "".join(rng.choice("0123456789") for _ in range(n))
    return rng.choice([s, "-" + s, s[: n // 2] + "." + s[n // 2:], s + "%", "$" + s, "1e" + s[:3]])


def chunk(text):
    a = rng.randrange(len(text))
    return text[a: a + rng.randint(1, 20)]


def piece():
    kind = rng.randrange(11)
    if kind == 0:
        return " ".join(rng.choice(ENGLISH) for _ in range(rng.randint(1, 12)))
    if kind == 1:
        return chunk(CHINESE)
    if kind == 2:
        return chunk(JAPANESE)
    if kind == 3:
        return chunk(KOREAN)
    if kind == 4:
        return chunk(ARABIC)
    if kind == 5:
        return "".join(rng.choice(EMOJI + UNICODE_15) for _ in range(rng.randint(1, 4)))
    if kind == 6:
        return rng.choice(CODE)
    if kind == 7:
        return rng.choice(LATEX)
    if kind == 8:
        return number()
    if kind == 9:
        return rng.choice(SPACES) * rng.randint(1, 5)
    def random_char():
        if rng.random() < 0.3:
            return chr(rng.randint(0x20, 0x7E))
        lo, hi = rng.choice(RANGES)
        return chr(rng.randint(lo, hi))
    return "".join(random_char() for _ in range(rng.randint(1, 8)))


def main():
    corpus = []
    for _ in range(10500):
        corpus.append(rng.choice(["", " ", "\n"]).join(piece() for _ in range(rng.randint(1, 6))))
    corpus += ["a" * n for n in (1, 2, 3, 17, 1000)]
    corpus += ["x" * 3000 + "y" * 3000, "1234567890" * 300, "ab" * 2000, " " * 500, "\n" * 300]
    corpus += [s + " and " + s for s in SPECIAL_LOOKING]
    corpus += ["", "🤖🧠✨" * 50, "Ｈｅｌｌｏ　ｗｏｒｌｄ", "e\u0301 vs \u00e9", "Å\u030a", "ﬁ ligature"]
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(corpus, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
