-- Image attachments in the chat playground (issue 19); the same column as SQLite's V12.
ALTER TABLE conversation_messages ADD COLUMN images TEXT;
