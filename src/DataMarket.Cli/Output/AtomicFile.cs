namespace DataMarket.Cli.Output;

/// <summary>An output file that cannot be written: the command reports it as bad input instead of a stack trace.</summary>
public sealed class OutputFileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Writes a file under a temporary name and moves it into place only when writing succeeded.</summary>
public static class AtomicFile
{
    public static void Write(string path, Action<TextWriter> write)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        // A typo in a folder name should not silently create a new tree somewhere; the folder must exist.
        if (!Directory.Exists(directory))
        {
            throw new OutputFileException($"{full}: cannot write the output, the folder {directory} does not exist");
        }

        var temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var writer = new StreamWriter(temporary))
            {
                write(writer);
            }

            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new OutputFileException($"{full}: cannot write the output ({exception.Message})", exception);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
