// What the flow studio takes from CodeMirror 6, exposed as one global (window.CM).
export {EditorView, basicSetup} from "codemirror";
export {EditorState, StateEffect, StateField} from "@codemirror/state";
export {Decoration, keymap} from "@codemirror/view";
export {yaml} from "@codemirror/lang-yaml";
export {linter, lintGutter, setDiagnostics, forceLinting} from "@codemirror/lint";
export {autocompletion} from "@codemirror/autocomplete";
