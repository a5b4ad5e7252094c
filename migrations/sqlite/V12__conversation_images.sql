-- Image attachments in the chat playground (issue 19): a user message keeps the images
-- it was sent with, as a JSON array of data URLs (`data:image/png;base64,...`), so a
-- reloaded conversation shows them and sends them again with its history. NULL: none.
ALTER TABLE conversation_messages ADD COLUMN images TEXT;
