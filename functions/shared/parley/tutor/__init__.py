"""The speaking tutor: settings, sessions and messages, the persona prompt, and the chat turn."""
