using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

// Compiled by MSBuild's RoslynCodeTaskFactory (see TorchNative.targets). Sets VER_FLG_WEAK on the named version
// requirement in an ELF64 little-endian shared object's .gnu.version_r section, in place. Idempotent: a requirement
// that is already weak is left alone and the file is not rewritten.
public class MarkElfVersionNeedWeak : Task
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string Version { get; set; } = "";

    public override bool Execute()
    {
        foreach (var item in Files)
        {
            var path = item.GetMetadata("FullPath");
            try
            {
                var outcome = Patch(path, Version);
                Log.LogMessage(MessageImportance.Normal, "{0}: {1} {2}", path, Version, outcome);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                Log.LogError("Cannot mark {0} weak in {1}: {2}", Version, path, e.Message);
            }
        }

        return !Log.HasLoggedErrors;
    }

    private static string Patch(string path, string version)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
        {
            throw new InvalidDataException("not an ELF file");
        }

        if (bytes[4] != 2 || bytes[5] != 1)
        {
            throw new InvalidDataException("not a 64-bit little-endian ELF file");
        }

        var sectionTable = checked((int)BitConverter.ToUInt64(bytes, 0x28));
        int sectionSize = BitConverter.ToUInt16(bytes, 0x3A);
        int sectionCount = BitConverter.ToUInt16(bytes, 0x3C);
        for (var s = 0; s < sectionCount; s++)
        {
            var header = sectionTable + s * sectionSize;
            if (BitConverter.ToUInt32(bytes, header + 4) != ShtGnuVerneed)
            {
                continue;
            }

            var offset = checked((int)BitConverter.ToUInt64(bytes, header + 0x18));
            var link = (int)BitConverter.ToUInt32(bytes, header + 0x28);
            var entries = (int)BitConverter.ToUInt32(bytes, header + 0x2C);
            var strings = checked((int)BitConverter.ToUInt64(bytes, sectionTable + link * sectionSize + 0x18));

            var need = offset;
            for (var n = 0; n < entries; n++)
            {
                int auxCount = BitConverter.ToUInt16(bytes, need + 2);
                var aux = need + (int)BitConverter.ToUInt32(bytes, need + 8);
                for (var a = 0; a < auxCount; a++)
                {
                    var name = ReadString(bytes, strings + (int)BitConverter.ToUInt32(bytes, aux + 8));
                    if (name == version)
                    {
                        var flags = BitConverter.ToUInt16(bytes, aux + 4);
                        if ((flags & VerFlgWeak) != 0)
                        {
                            return "already weak";
                        }

                        var patched = (ushort)(flags | VerFlgWeak);
                        bytes[aux + 4] = (byte)patched;
                        bytes[aux + 5] = (byte)(patched >> 8);
                        // Replace rather than rewrite in place, so a hard link into the NuGet cache is never changed.
                        var temp = path + ".patching";
                        File.WriteAllBytes(temp, bytes);
                        File.Delete(path);
                        File.Move(temp, path);
                        return "marked weak";
                    }

                    aux += (int)BitConverter.ToUInt32(bytes, aux + 12);
                }

                need += (int)BitConverter.ToUInt32(bytes, need + 12);
            }

            return "not required (nothing to do)";
        }

        return "no version requirements (nothing to do)";
    }

    private static string ReadString(byte[] bytes, int start)
    {
        var end = Array.IndexOf(bytes, (byte)0, start);
        return Encoding.ASCII.GetString(bytes, start, end - start);
    }
}
