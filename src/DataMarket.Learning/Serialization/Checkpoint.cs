using System.Numerics;
using System.Runtime.InteropServices;
using DataMarket.Learning.Models;

namespace DataMarket.Learning.Serialization;

/// <summary>Saves and loads a model's parameters as safetensors, keyed by parameter name.</summary>
public static class Checkpoint
{
    public static string DTypeOf<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? "F32" : typeof(T) == typeof(double) ? "F64"
        : throw new NotSupportedException($"No safetensors dtype for {typeof(T).Name}.");

    public static void Save<T>(Stream stream, Model<T> model, IReadOnlyDictionary<string, string>? metadata = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        EnsureLittleEndian();
        Safetensors.Write(stream, model.Parameters.Select(p => KeyValuePair.Create(p.Name,
            new SafetensorsTensor(DTypeOf<T>(), p.Shape, MemoryMarshal.AsBytes(p.Value.AsSpan()).ToArray()))), metadata);
    }

    public static void Save<T>(string path, Model<T> model, IReadOnlyDictionary<string, string>? metadata = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        using var file = File.Create(path);
        Save(file, model, metadata);
    }

    /// <summary>
    /// Loads every parameter of <paramref name="model"/>. Missing or unexpected names, a dtype other
    /// than the model's, or a different shape are errors; nothing is modified unless all checks pass.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Load<T>(Stream stream, Model<T> model) where T : unmanaged, IFloatingPointIeee754<T>
    {
        EnsureLittleEndian();
        var (tensors, metadata) = Safetensors.Read(stream);
        string dtype = DTypeOf<T>();
        foreach (var parameter in model.Parameters)
        {
            if (!tensors.TryGetValue(parameter.Name, out var tensor))
            {
                throw new SafetensorsFormatException($"Checkpoint has no tensor '{parameter.Name}'.");
            }
            if (tensor.DType != dtype)
            {
                throw new SafetensorsFormatException($"Tensor '{parameter.Name}' is {tensor.DType}; this model needs {dtype}.");
            }
            if (!tensor.Shape.SequenceEqual(parameter.Shape))
            {
                throw new SafetensorsFormatException($"Tensor '{parameter.Name}' has shape [{string.Join(", ", tensor.Shape)}]; the model expects [{string.Join(", ", parameter.Shape)}].");
            }
        }
        var unexpected = tensors.Keys.Except(model.Parameters.Select(p => p.Name)).ToList();
        if (unexpected.Count > 0)
        {
            throw new SafetensorsFormatException($"Checkpoint has tensors this model does not: {string.Join(", ", unexpected.Take(5))}.");
        }
        foreach (var parameter in model.Parameters)
        {
            MemoryMarshal.Cast<byte, T>(tensors[parameter.Name].Data).CopyTo(parameter.Value);
        }
        return metadata;
    }

    public static IReadOnlyDictionary<string, string> Load<T>(string path, Model<T> model) where T : unmanaged, IFloatingPointIeee754<T>
    {
        using var file = File.OpenRead(path);
        return Load(file, model);
    }

    private static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Safetensors data is little-endian; big-endian hosts are not supported.");
        }
    }
}
