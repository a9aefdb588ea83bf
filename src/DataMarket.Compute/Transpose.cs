namespace DataMarket.Compute;

/// <summary>Whether a GEMM operand is used as stored (row-major) or transposed.</summary>
public enum Transpose
{
    None = 0,
    Transposed = 1,
}
