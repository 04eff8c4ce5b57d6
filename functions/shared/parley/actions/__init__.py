"""The action API of the original tutor backend (``{"action": ...}`` bodies on ``POST /chat``)."""
