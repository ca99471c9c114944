"""Screens of the lab: the main screen with its four panes, help, and the small dialogs."""
