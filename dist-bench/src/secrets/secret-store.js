// Where Salesforce credentials live. Nothing else in Switchyard holds them: the database keeps only the
// name of a secret (Org.secretRef), and only a task's child process ever sees the value, which it obtains
// by redeeming a single-use, short-lived grant (see src/workers/).
export {};
