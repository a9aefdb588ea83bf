using System.Buffers.Binary;
using System.Text;
using DataMarket.Learning.Models;
using DataMarket.Learning.Serialization;

namespace DataMarket.Learning.Tests;

public class safetensors_checkpoints
{
    private static GptModel<float> SmallGpt(ulong seed) => new(new GptOptions(ContextLength: 8, Layers: 1, Heads: 2, Width: 8, Seed: seed));

    private static byte[] Saved<T>(Models.Model<T> model) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var stream = new MemoryStream();
        Checkpoint.Save(stream, model, new Dictionary<string, string> { ["format"] = "pt" });
        return stream.ToArray();
    }

    [Fact]
    public void round_trip_is_bit_exact()
    {
        var source = SmallGpt(1);
        source.Parameters[0].Value[0] = BitConverter.Int32BitsToSingle(0x7FC0_1234); // a NaN payload must survive too
        var bytes = Saved(source);
        var target = SmallGpt(2);
        var metadata = Checkpoint.Load(new MemoryStream(bytes), target);
        Assert.Equal("pt", metadata["format"]);
        for (int p = 0; p < source.Parameters.Count; p++)
        {
            Assert.Equal(source.Parameters[p].Name, target.Parameters[p].Name);
            var expected = source.Parameters[p].Value.Select(BitConverter.SingleToInt32Bits);
            Assert.Equal(expected, target.Parameters[p].Value.Select(BitConverter.SingleToInt32Bits));
        }
        Assert.Equal(bytes, Saved(target));
    }

    [Fact]
    public void the_file_layout_follows_the_format()
    {
        var bytes = Saved(new MlpModel<double>(new MlpOptions(2, [3], 1)));
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLength % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.Contains("\"layers.0.weight\":{\"dtype\":\"F64\",\"shape\":[3,2],\"data_offsets\":[0,48]}", header);
        Assert.Equal(8 + (long)headerLength + 8 * (6 + 3 + 3 + 1), bytes.Length);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(12)]
    [InlineData(-5)]
    public void a_truncated_file_is_rejected(int keep)
    {
        var bytes = Saved(SmallGpt(1));
        var truncated = bytes[..(keep >= 0 ? keep : bytes.Length + keep)];
        var error = Assert.Throws<SafetensorsFormatException>(() => Checkpoint.Load(new MemoryStream(truncated), SmallGpt(2)));
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void a_bad_header_is_rejected()
    {
        var garbage = new byte[8 + 6];
        BinaryPrimitives.WriteUInt64LittleEndian(garbage, 6);
        Encoding.ASCII.GetBytes("{nope!").CopyTo(garbage, 8);
        Assert.Contains("not valid JSON", Assert.Throws<SafetensorsFormatException>(() => Safetensors.Read(new MemoryStream(garbage))).Message);

        var huge = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(huge, ulong.MaxValue);
        Assert.Throws<SafetensorsFormatException>(() => Safetensors.Read(new MemoryStream(huge)));

        var inconsistent = Encoding.ASCII.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}");
        var file = new byte[8 + inconsistent.Length + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)inconsistent.Length);
        inconsistent.CopyTo(file, 8);
        Assert.Contains("needs 8", Assert.Throws<SafetensorsFormatException>(() => Safetensors.Read(new MemoryStream(file))).Message);
    }

    [Fact]
    public void a_wrong_dtype_is_rejected()
    {
        var doubles = new GptModel<double>(new GptOptions(ContextLength: 8, Layers: 1, Heads: 2, Width: 8));
        var error = Assert.Throws<SafetensorsFormatException>(() => Checkpoint.Load(new MemoryStream(Saved(doubles)), SmallGpt(2)));
        Assert.Contains("is F64; this model needs F32", error.Message);
    }

    [Fact]
    public void a_wrong_shape_is_rejected_and_leaves_the_model_unchanged()
    {
        var wider = new GptModel<float>(new GptOptions(ContextLength: 8, Layers: 1, Heads: 2, Width: 16));
        var target = SmallGpt(2);
        var before = target.Parameters[0].Value.ToArray();
        var error = Assert.Throws<SafetensorsFormatException>(() => Checkpoint.Load(new MemoryStream(Saved(wider)), target));
        Assert.Contains("has shape [256, 16]; the model expects [256, 8]", error.Message);
        Assert.Equal(before, target.Parameters[0].Value);
    }
}
