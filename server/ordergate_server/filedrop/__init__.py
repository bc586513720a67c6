"""The file-drop channel: XML files picked up from client folders (SFTP/FTP), stock snapshots
written out. An adapter like api/: it turns files into calls of the same service functions."""

from .poller import DropSettings, FilePoller, PassSummary

__all__ = ["DropSettings", "FilePoller", "PassSummary"]
