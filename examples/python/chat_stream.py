"""Streaming chat: thinking (dimmed on a terminal) and answer as they are generated.

    python3 examples/python/chat_stream.py MODEL_DIR "What is 17 * 23?"
"""
import sys

import reasonrt


def main():
    model_dir = sys.argv[1]
    question = sys.argv[2] if len(sys.argv) > 2 else "What is 17 * 23?"
    dim, reset = ("\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "")
    model = reasonrt.Model(model_dir, progress=lambda f: print(f"\rloading {f:4.0%}", end="", file=sys.stderr))
    print(file=sys.stderr)
    for event in model.generate([{"role": "user", "content": question}], max_tokens=256, stream=True):
        if event.type == "thinking":
            print(dim + event.text + reset, end="", flush=True)
        elif event.type == "answer":
            print(event.text, end="", flush=True)
        elif event.type == "finish":
            print(f"\n[finished: {event.finish_reason}]")


if __name__ == "__main__":
    main()
