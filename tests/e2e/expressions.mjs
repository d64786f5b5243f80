// GitHub Actions expressions evaluated by GitHub's own library (@actions/expressions), for the
// workflow emulation in ci_runners.py. stdin: {"contexts": {...}, "expressions": ["...", ...]};
// stdout: [{"truthy": bool, "text": "..."}, ...] in the same order.
import { readFileSync } from "node:fs";
import { Evaluator, Lexer, Parser, data } from "@actions/expressions";
import { truthy } from "@actions/expressions/result";

const request = JSON.parse(readFileSync(0, "utf8"));
const names = Object.keys(request.contexts);
const contexts = new data.Dictionary(
  ...names.map((key) => ({ key, value: JSON.parse(JSON.stringify(request.contexts[key]), data.reviver) })),
);
const results = request.expressions.map((expression) => {
  const lexed = new Lexer(expression).lex();
  const parsed = new Parser(lexed.tokens, names, []).parse();
  const value = new Evaluator(parsed, contexts).evaluate();
  return { truthy: truthy(value), text: value.coerceString() };
});
process.stdout.write(JSON.stringify(results));
