// Entry point of the per-task child process when it is not started from the child snapshot (child-launcher.ts
// forks this file either way; from a snapshot, Node runs the snapshot's main function instead, which runs the
// same child-runtime.ts).
import { runChild } from './child-runtime.js';

runChild();
